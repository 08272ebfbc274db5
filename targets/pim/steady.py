"""Exact loop acceleration for the timing engine (mixed into scheduler.Scheduler).

Steady state: after each iteration of an eligible loop the engine snapshots, per
touched channel, what the loop's own commands can observe: `ready` entries of the
command kinds in the body (relative to the channel clock), register hazards relabelled
by the loop's slot/acc stride, tFAW histories if the body activates, open rows and
counters. Three snapshots with identical observables and equal clock steps prove the
iterations repeat; the state is then advanced m iterations arithmetically, stopping a
safe margin before the next refresh and leaving a tail of real iterations that rewrites
the state the body writes but never reads (e.g. PRE readiness after a MAC stream).

Channel symmetry: a loop whose iterations do the same work on distinct channels (the
loop variable appears only in `ch`, with one stride, and the channels start in
identical states) runs its first iteration and copies the resulting channel state.
"""
from __future__ import annotations

import numpy as np

FF_MAX_FAILS = 12          # give up on a loop that shows no steady state this soon
FF_MIN_COUNT = 8           # shorter loops are cheaper to simulate than to snapshot
HAZARD_LEVELS = ("slot", "acc")   # indexed by operand value: relabelled by loop stride


def _ev(op, env) -> int:
    const, terms = op
    for var, c in terms:
        const += c * env[var]
    return const


class LoopAccel:
    def _loop(self, lp, env) -> None:
        n = lp.count
        if self.accel and lp.rep is not None and n > 1 and self._replicate(lp, env):
            return
        use_ff = self.accel and lp.ff and n >= FF_MIN_COUNT
        hist: list = []
        fails, i, resume = 0, 0, 0
        while i < n:
            if lp.var:
                env[lp.var] = i
            self.touch.append(set())
            self._run(lp.body, env)
            t = self.touch.pop()
            self.touch[-1] |= t
            i += 1
            # snapshots start where earlier instances of this loop settled (cheaper)
            if not use_ff or i >= n or fails >= FF_MAX_FAILS or i + 2 < lp.settle or i < resume:
                continue
            if lp.masks is None:
                lp.masks = self._masks(lp)
            hist.append((frozenset(t), {ch: self._snap(ch, lp, i) for ch in t}))
            if len(hist) < 3:
                continue
            hist = hist[-3:]
            found = self._steady(hist, n - i, lp)
            if found is None:
                fails += 1
                continue
            m, tail = found
            if m > 0:
                if lp.settle == 0:
                    lp.settle = i
                self._extrapolate(hist, m, lp)
                i += m
            # the tail (and a refresh right after it) is simulated without snapshots
            hist, fails, resume = [], 0, i + tail + 1
        if lp.var:
            env.pop(lp.var, None)

    def _masks(self, lp):
        """What a loop's iterations can observe: entries of the kinds its commands have.
        Also the tail of real iterations needed after a skip (see _steady)."""
        fmask = np.array([k in lp.kinds or k == "*" for k in self.fixed_kind], dtype=bool)
        hmask = np.array([d[1] in lp.kinds for d in self.decode], dtype=bool)
        acts = bool(lp.kinds & {"ACT", "ACTab"})
        lat = 0
        for cr in self.rules:
            r = cr.rule
            if r.level in HAZARD_LEVELS and lp.strides.get(r.level) and set(r.prev) & lp.kinds:
                lat = max(lat, cr.latency)
        return fmask, hmask, acts, lat

    def _snap(self, ch: int, lp, i: int):
        st = self.chans[ch]
        f = st.floor
        fmask, hmask, acts, _ = lp.masks
        arr = np.array(st.ready, dtype=np.int64) - f
        fixed = np.maximum(arr[:self.fixed][fmask], 0).tobytes()
        hz = []
        strides = lp.strides
        for j in np.flatnonzero((arr[self.fixed:] > 0) & hmask).tolist():
            lvl, kind, pc, k = self.decode[j]
            hz.append((lvl, kind, pc, k - strides.get(lvl, 0) * i, int(arr[self.fixed + j])))
        win = ()
        if acts:
            wl = self.win_lat
            win = tuple((key, tuple(max(x - f, -wl) for x in h)) for key, h in sorted(st.win.items()))
        return (f, st.due, (fixed, tuple(hz), win), tuple(st.rows), tuple(st.cnt))

    def _steady(self, hist, remaining: int, lp):
        """Iterations repeat exactly once three consecutive snapshots differ by the same
        clock step with identical observable state. Returns (iterations to skip, tail):
        none past the next refresh, and a tail of real iterations is left so that state
        the body writes but never reads (PRE readiness after a MAC stream, completion
        time, strided register hazards) is rewritten with exact values."""
        (t0, s0), (t1, s1), (t2, s2) = hist
        if not (t0 == t1 == t2):
            return None
        hz_lat = lp.masks[3]
        steps = {}
        for ch in t2:
            a, b, c = s0[ch], s1[ch], s2[ch]
            d = b[0] - a[0]
            if c[0] - b[0] != d or not (a[1] == b[1] == c[1]) or not (a[2] == b[2] == c[2]):
                return None
            for x, y, z in zip(a[3], b[3], c[3]):
                if (x < 0 or y < 0 or z < 0) and not (x == y == z):
                    return None
                if z - y != y - x:
                    return None
            if any(z - y != y - x for x, y, z in zip(a[4], b[4], c[4])):
                return None
            steps[ch] = d
        tail = max([1] + [1 + -(-hz_lat // d) for d in steps.values() if d > 0])
        m = remaining - tail
        for ch, d in steps.items():
            if self.refresh and d > 0:
                # skipped iterations and the exact tail both end before the refresh is due
                c = s2[ch]
                m = min(m, (c[1] - 1 - c[0]) // d - tail)
        return max(m, 0), tail

    def _extrapolate(self, hist, m: int, lp) -> None:
        _, s1 = hist[1]
        _, s2 = hist[2]
        fmask, hmask, acts, _ = lp.masks
        strides = lp.strides
        for ch, c in s2.items():
            b = s1[ch]
            st = self.chans[ch]
            shift = (c[0] - b[0]) * m
            old_floor = st.floor
            st.floor += shift
            arr = np.array(st.ready, dtype=np.int64)
            fixed = arr[:self.fixed]
            fixed[fmask] += shift
            # observed register hazards move with the loop's slot/acc stride as well
            hz = arr[self.fixed:]
            moved = np.flatnonzero(hmask & (hz > old_floor)).tolist()
            vals = hz[moved] + shift
            hz[hmask] = np.minimum(hz[hmask], st.floor)
            for j, v in zip(moved, vals.tolist()):
                lvl, kind, pc, k = self.decode[j]
                j2 = self.base[(lvl, kind)] - self.fixed + pc * self.per_pc[lvl] + k + strides.get(lvl, 0) * m
                if v > hz[j2]:
                    hz[j2] = v
            st.ready = arr.tolist()
            if acts:
                for h in st.win.values():
                    h[:] = [x + shift for x in h]
            st.rows = [z + (z - y) * m if z >= 0 else z for y, z in zip(b[3], c[3])]
            st.cnt = [z + (z - y) * m for y, z in zip(b[4], c[4])]

    def _replicate(self, lp, env) -> bool:
        stride, offsets = lp.rep
        env[lp.var] = 0
        base = sorted({_ev(o, env) for o in offsets})
        groups = [[a + stride * i for a in base] for i in range(lp.count)]
        flat = [c for g in groups for c in g]
        if len(set(flat)) != len(flat) or min(flat) < 0 or max(flat) >= len(self.chans):
            env.pop(lp.var)
            return False
        ref = self.chans[flat[0]].key()
        if any(self.chans[c].key() != ref for c in flat[1:]):
            env.pop(lp.var)
            return False
        before = {a: list(self.chans[a].cnt) for a in base}
        self.touch.append(set())
        self._run(lp.body, env)
        t = self.touch.pop()
        self.touch[-1] |= t
        for g in groups[1:]:
            for a, c in zip(base, g):
                src, old = self.chans[a], self.chans[c]
                new = src.clone()
                new.cnt = [o + s - b for o, s, b in zip(old.cnt, src.cnt, before[a])]
                self.chans[c] = new
        self.touch[-1].update(flat)
        env.pop(lp.var)
        return True


def analyse(lp, timing_operands):
    """Static loop facts: steady-state eligible?, hazard strides, channel replication,
    and the command kinds the body issues."""
    cmds, inner = [], set()
    _collect(lp.body, cmds, inner)
    v = lp.var
    kinds = {cp.spec.kind for cp in cmds}
    if v is None:
        return True, {}, None, kinds

    def coeff(cp, name):
        return dict(cp.ops[name][1]).get(v, 0) if name in cp.ops else 0

    fixed_ok = all(coeff(cp, n) == 0 for cp in cmds for n in ("ch", "pc", "bank", "sel"))
    strides, ok = {}, fixed_ok
    for lvl in HAZARD_LEVELS:
        ks = {coeff(cp, lvl) for cp in cmds if lvl in cp.ops}
        if len(ks) > 1:
            ok = False
        strides[lvl] = ks.pop() if len(ks) == 1 else 0
    rep = None
    chs = [cp for cp in cmds if "ch" in cp.ops]
    ks = {coeff(cp, "ch") for cp in chs}
    if (chs and len(ks) == 1 and 0 not in ks and len(chs) == len(cmds)
            and all(coeff(cp, n) == 0 for cp in cmds for n in timing_operands if n != "ch")
            and not any(var in inner for cp in chs for var, _ in cp.ops["ch"][1])):
        s = ks.pop()
        rep = (s, [(c0, tuple((var, c) for var, c in terms if var != v))
                   for c0, terms in (cp.ops["ch"] for cp in chs)])
    return ok, strides, rep, kinds


def _collect(plans, cmds: list, inner: set) -> None:
    for p in plans:
        if not hasattr(p, "count"):          # a command plan, not a loop plan
            cmds.append(p)
        else:
            if p.var:
                inner.add(p.var)
            _collect(p.body, cmds, inner)
