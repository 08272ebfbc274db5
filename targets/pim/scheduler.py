"""Timing engine: issues every command at its earliest legal cycle, in order per channel.

State per channel: a `ready` vector (earliest cycle per (level node, command kind), filled
forward from the rule table in timing.py), tFAW histories, open rows, the next refresh due
time, completion time, and event counters. Channels are independent except at SYNC.

Refresh is the controller's job: when a command would issue at or after the channel's
due time, PREA (if rows are open), REF and re-activation of the open rows are injected
first (marked `auto` in traces), and due advances by tREFI.

Two accelerations keep big programs fast; both are exact and both are off when a trace
is recorded:
- steady state: a loop whose iterations leave the same state relative to the channel
  clock (same `ready` offsets, same clock advance, rows advancing by a constant, register
  hazards shifted by the loop's slot/acc stride) is extrapolated up to just before the
  next refresh; the iterations around each refresh are simulated, then it skips again.
- channel symmetry: a loop whose iterations run the same work on distinct channels that
  start in identical states is simulated once and its end state copied.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.isa import OPS, ew_slots, touched_banks
from speccc.targets.pim.listing import Command, Loop, Program
from speccc.targets.pim.timing import LEVELS, compile_rules, completion_latency, level_sizes, touched

COUNTERS = ("cmds", "act_banks", "int_bursts", "ext_bursts", "macs", "pu_elems", "refs")
FF_MAX_FAILS = 12          # give up on a loop that shows no steady state this soon
FF_MIN_COUNT = 8           # shorter loops are cheaper to simulate than to snapshot
TIMING_OPERANDS = ("ch", "pc", "bank", "sel", "row", "slot", "acc")
HAZARD_LEVELS = ("slot", "acc")   # indexed by operand value: relabelled by loop stride


@dataclass
class TraceEntry:
    cycle: int
    op: str
    args: dict            # concrete operand values
    line: int | None      # listing line (None for controller-injected commands)
    auto: bool = False


class ChannelState:
    __slots__ = ("floor", "done", "due", "active", "ready", "win", "rows", "cnt")

    def __init__(self, size: int, nbanks: int, due: int):
        self.floor, self.done, self.due, self.active = 0, 0, due, False
        self.ready = [0] * size
        self.win: dict = {}
        self.rows = [-1] * nbanks
        self.cnt = [0] * len(COUNTERS)

    def clone(self) -> "ChannelState":
        c = ChannelState.__new__(ChannelState)
        c.floor, c.done, c.due, c.active = self.floor, self.done, self.due, self.active
        c.ready, c.rows, c.cnt = list(self.ready), list(self.rows), list(self.cnt)
        c.win = {k: list(v) for k, v in self.win.items()}
        return c

    def key(self):
        return (self.floor, self.done, self.due, self.active, self.ready, self.rows,
                sorted(self.win.items()))


class _Sig:
    """Precomputed effect of one concrete command shape (kind + nodes)."""
    __slots__ = ("check", "updates", "wins", "done", "cnt", "banks", "pc")


class _CP:
    __slots__ = ("cmd", "spec", "ops")


class _LP:
    __slots__ = ("var", "count", "body", "ff", "strides", "rep", "kinds", "masks", "settle")


def _compile_operand(v):
    return (v.const, v.terms) if not isinstance(v, str) else (0, ())


def _ev(op, env) -> int:
    const, terms = op
    for var, c in terms:
        const += c * env[var]
    return const


class Scheduler:
    def __init__(self, hw, *, refresh: bool = True, accelerate: bool = True,
                 record: bool = False, name: str = "<listing>"):
        self.hw, self.pim = hw, hw.pim
        self.refresh, self.record, self.name = refresh, record, name
        self.accel = accelerate and not record
        self.trace: list[TraceEntry] = []
        self.rules = compile_rules(hw)
        self.done_lat = completion_latency(hw)
        self.tREFI = self.pim.timing.tREFI
        # history entries older than the longest window latency can no longer bind
        self.win_lat = max([cr.latency for cr in self.rules if cr.rule.window > 1], default=0)
        self._layout()
        self.chans = [ChannelState(self.size, self.pim.banks_per_channel, self.tREFI)
                      for _ in range(self.pim.channels)]
        self._sigs: dict = {}
        self.touch: list[set] = [set()]

    # ------------------------------------------------------------- layout ----
    def _layout(self) -> None:
        """Flat `ready` vector: one block per (level, following kind) that some rule needs.
        Hazard levels go last so a snapshot can relabel them."""
        sizes = level_sizes(self.pim)
        self.per_pc = {lvl: sizes[lvl] // self.pim.pseudo_channels for lvl in LEVELS}
        self.base: dict = {}
        self.decode: list = []          # for hazard entries: (level, kind, pc, index)
        self.fixed_kind: list = []      # kind of every non-hazard entry
        off = 0
        for hazard in (False, True):
            if hazard:
                self.fixed = off
            for lvl in LEVELS:
                if (lvl in HAZARD_LEVELS) != hazard:
                    continue
                kinds = sorted({k for cr in self.rules if cr.rule.level == lvl for k in cr.rule.next})
                per_pc = sizes[lvl] // self.pim.pseudo_channels
                for k in kinds:
                    self.base[(lvl, k)] = off
                    if hazard:
                        self.decode += [(lvl, k, n // per_pc, n % per_pc) for n in range(sizes[lvl])]
                    else:
                        self.fixed_kind += [k] * sizes[lvl]
                    off += sizes[lvl]
        self.size = off

    def _sig(self, kind: str, spec, pc: int, bank, sel: int, slot: int, acc: int) -> _Sig:
        key = (spec.name, pc, bank, sel, slot, acc)
        sig = self._sigs.get(key)
        if sig is not None:
            return sig
        pim = self.pim
        banks = touched_banks(pim, spec, pc, bank, sel)
        slots = ()
        if kind in ("WRGB", "MAC", "MACab"):
            slots = (slot,)
        elif kind in ("EWMUL", "EWADD"):
            slots = tuple(range(slot, slot + ew_slots(pim)))
        accs = (acc,) if kind in ("MAC", "MACab", "RDMAC", "AF", "EWMUL", "EWADD") else ()
        nodes = touched(pim, kind, pc, banks, slots, accs)
        sig = _Sig()
        sig.check = tuple(self.base[(lvl, kind)] + n for lvl in LEVELS
                          if (lvl, kind) in self.base for n in nodes[lvl])
        upd: dict[int, int] = {}
        wins = []
        for cr in self.rules:
            r = cr.rule
            if kind not in r.prev:
                continue
            for n in nodes[r.level]:
                idxs = [self.base[(r.level, f)] + n for f in r.next]
                if r.window > 1:
                    wins.append(((cr.index, n), r.window, cr.latency, tuple(idxs)))
                    continue
                for i in idxs:
                    upd[i] = max(upd.get(i, 0), cr.latency)
        sig.updates = tuple(upd.items())
        sig.wins = tuple(wins)
        sig.done = self.done_lat[kind]
        cnt = [1, 0, 0, 0, 0, 0, 0]
        if kind in ("ACT", "ACTab"):
            cnt[1] = len(banks)
        elif kind in ("MAC", "MACab"):
            cnt[2], cnt[4] = len(banks), len(banks) * pim.pu.lanes
        elif kind in ("RD", "WR", "WRGB"):
            cnt[3] = 1
        elif kind == "RDMAC":
            cnt[3] = pim.rdmac_bursts
        elif kind in ("AF", "EWMUL", "EWADD"):
            cnt[5] = pim.pus_per_pc * pim.acc_lanes
        elif kind == "REF":
            cnt[6] = 1
        sig.cnt = tuple((i, d) for i, d in enumerate(cnt) if d)
        sig.banks, sig.pc = banks, pc
        self._sigs[key] = sig
        return sig

    # --------------------------------------------------------------- plan ----
    def _plan(self, body) -> list:
        out = []
        for node in body:
            if isinstance(node, Command):
                cp = _CP()
                cp.cmd, cp.spec = node, OPS[node.op]
                cp.ops = {n: _compile_operand(v) for n, v in node.args if n in TIMING_OPERANDS}
                out.append(cp)
            elif isinstance(node, Loop):
                lp = _LP()
                lp.var, lp.count, lp.body = node.var, node.count, self._plan(node.body)
                lp.ff, lp.strides, lp.rep, lp.kinds = _analyse(lp)
                lp.masks, lp.settle = None, 0
                out.append(lp)
        return out

    # ---------------------------------------------------------------- run ----
    def run(self, program: Program) -> None:
        self._run(self._plan(program.body), {})

    def _run(self, plans, env) -> None:
        for p in plans:
            if isinstance(p, _CP):
                self._exec(p, env)
            else:
                self._loop(p, env)

    def _where(self, cp, env) -> str:
        it = ", ".join(f"{k}={v}" for k, v in env.items())
        return f"{self.name}:{cp.cmd.line}:{cp.cmd.col}", (f" [iteration {it}]" if it else "")

    def _exec(self, cp: _CP, env) -> None:
        spec = cp.spec
        if spec.kind == "SYNC":
            return self._sync(cp)
        ops = cp.ops
        ch = _ev(ops["ch"], env)
        bank = _ev(ops["bank"], env) if "bank" in ops else None
        pc = bank // self.pim.banks_per_pc if bank is not None else \
            (_ev(ops["pc"], env) if "pc" in ops else 0)
        sel = _ev(ops["sel"], env) if "sel" in ops else 0
        slot = _ev(ops["slot"], env) if "slot" in ops else 0
        acc = _ev(ops["acc"], env) if "acc" in ops else 0
        row = _ev(ops["row"], env) if "row" in ops else -1
        sig = self._sig(spec.kind, spec, pc, bank, sel, slot, acc)
        st = self.chans[ch]
        self._check_state(st, spec, sig, row, cp, env, ch)
        self.touch[-1].add(ch)
        t = self._earliest(st, sig, cp.cmd.stamp)
        if not st.active:
            # a channel owes refreshes from its first use on, on the common tREFI grid
            st.active = True
            st.due = (t // self.tREFI + 1) * self.tREFI
        while self.refresh and t >= st.due:
            self._do_refresh(ch)
            t = self._earliest(st, sig, cp.cmd.stamp)
        self._issue(ch, st, sig, spec, t, row, False, cp.cmd, env)

    def _earliest(self, st, sig, stamp) -> int:
        r = st.ready
        t = st.floor
        for i in sig.check:
            if r[i] > t:
                t = r[i]
        return t if stamp is None or stamp < t else stamp

    def _check_state(self, st, spec, sig, row, cp, env, ch) -> None:
        rows = st.rows
        need = spec.state
        if need == "none":
            return
        for b in (sig.banks if need != "pc_closed" else
                  range(sig.pc * self.pim.banks_per_pc, (sig.pc + 1) * self.pim.banks_per_pc)):
            have = rows[b]
            if need == "open" and have == row:
                continue
            if need in ("closed", "pc_closed") and have < 0:
                continue
            where, it = self._where(cp, env)
            if need == "open":
                what = "closed (ACT it first)" if have < 0 else f"open at row {have}, not {row}"
                msg = f"{spec.name} needs row {row} open in bank {b} of channel {ch}, which is {what}"
            elif need == "closed":
                msg = f"{spec.name} to bank {b} of channel {ch}, which has row {have} open (PRE it first)"
            else:
                msg = f"REF needs every bank of channel {ch} pc {sig.pc} closed; bank {b} has row {have} open"
            raise SpecccError(msg + it, location=where)

    def _issue(self, ch, st, sig, spec, t, row, auto, cmd, env) -> None:
        r = st.ready
        for i, lat in sig.updates:
            v = t + lat
            if r[i] < v:
                r[i] = v
        for key, w, lat, idxs in sig.wins:
            h = st.win.get(key)
            if h is None:
                h = st.win[key] = []
            h.append(t)
            if len(h) > w:
                del h[0]
            if len(h) == w:
                v = h[0] + lat
                for i in idxs:
                    if r[i] < v:
                        r[i] = v
        st.floor = t
        if not auto and t + sig.done > st.done:
            st.done = t + sig.done
        if spec.opens:
            for b in sig.banks:
                st.rows[b] = row
        elif spec.closes:
            for b in sig.banks:
                st.rows[b] = -1
        c = st.cnt
        for i, d in sig.cnt:
            c[i] += d
        if self.record:
            if cmd is not None:
                args = {n: (v if isinstance(v, str) else v.eval(env)) for n, v in cmd.args}
                line = cmd.line
            else:
                args, line = env, None
            self.trace.append(TraceEntry(t, spec.name, {"ch": ch, **args}, line, auto))

    # ------------------------------------------------------------ refresh ----
    def _auto(self, ch, op: str, pc: int, sel: int = 0, bank=None, row: int = -1) -> None:
        st, spec = self.chans[ch], OPS[op]
        sig = self._sig(spec.kind, spec, pc, bank, sel, 0, 0)
        t = max(self._earliest(st, sig, None), st.due)
        args = {"pc": pc} if bank is None else {"bank": bank}
        if op == "ACT.ab":
            args.update(sel=sel, row=row)
        elif op == "ACT":
            args.update(row=row)
        self._issue(ch, st, sig, spec, t, row, True, None, args)

    def _do_refresh(self, ch: int) -> None:
        st, pim = self.chans[ch], self.pim
        per, S = pim.banks_per_pc, pim.pu.banks_per_pu
        reopen = []
        for pc in range(pim.pseudo_channels):
            opened = {b: st.rows[b] for b in range(pc * per, (pc + 1) * per) if st.rows[b] >= 0}
            if opened:
                self._auto(ch, "PREA", pc)
            self._auto(ch, "REF", pc)
            reopen.append((pc, opened))
        for pc, opened in reopen:
            for s in range(S):
                sel_banks = range(pc * per + s, (pc + 1) * per, S)
                rows = {opened.get(b) for b in sel_banks}
                if len(rows) == 1 and None not in rows:
                    self._auto(ch, "ACT.ab", pc, sel=s, row=rows.pop())
                    for b in sel_banks:
                        opened.pop(b)
            for b, row in sorted(opened.items()):
                self._auto(ch, "ACT", pc, bank=b, row=row)
        st.due += self.tREFI

    # --------------------------------------------------------------- sync ----
    def _sync(self, cp) -> None:
        chans = self.chans
        barrier = max(max(st.done, st.floor) for st in chans)
        for ch, st in enumerate(chans):
            while self.refresh and st.active and st.due <= barrier:
                self._do_refresh(ch)
        for st in chans:
            if st.floor < barrier:
                st.floor = barrier
        self.touch[-1].update(range(len(chans)))
        if self.record:
            self.trace.append(TraceEntry(barrier, "SYNC", {}, cp.cmd.line))

    # -------------------------------------------------------------- loops ----
    def _loop(self, lp: _LP, env) -> None:
        n = lp.count
        if self.accel and lp.rep is not None and n > 1 and self._replicate(lp, env):
            return
        use_ff = self.accel and lp.ff and n >= FF_MIN_COUNT
        hist: list = []
        fails, i = 0, 0
        while i < n:
            if lp.var:
                env[lp.var] = i
            self.touch.append(set())
            self._run(lp.body, env)
            t = self.touch.pop()
            self.touch[-1] |= t
            i += 1
            # snapshots start where earlier instances of this loop settled (cheaper)
            if not use_ff or i >= n or fails >= FF_MAX_FAILS or i + 2 < lp.settle:
                continue
            if lp.masks is None:
                lp.masks = self._masks(lp)
            hist.append((frozenset(t), {ch: self._snap(ch, lp, i) for ch in t}))
            if len(hist) < 3:
                continue
            hist = hist[-3:]
            m = self._steady(hist, n - i, lp)
            if m is None:
                fails += 1
            elif m > 0:
                if lp.settle == 0:
                    lp.settle = i
                self._extrapolate(hist, m, lp)
                i += m
                hist, fails = [], 0
        if lp.var:
            env.pop(lp.var, None)

    def _masks(self, lp: _LP):
        """What a loop's iterations can observe: entries of the kinds its commands have.
        Also the tail of real iterations needed after a skip (see _steady)."""
        fmask = np.array([k in lp.kinds for k in self.fixed_kind], dtype=bool)
        hmask = np.array([d[1] in lp.kinds for d in self.decode], dtype=bool)
        acts = bool(lp.kinds & {"ACT", "ACTab"})
        lat = 0
        for cr in self.rules:
            r = cr.rule
            if r.level in HAZARD_LEVELS and lp.strides.get(r.level) and set(r.prev) & lp.kinds:
                lat = max(lat, cr.latency)
        return fmask, hmask, acts, lat

    def _snap(self, ch: int, lp: _LP, i: int):
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

    def _steady(self, hist, remaining: int, lp: _LP):
        """Iterations repeat exactly once three consecutive snapshots differ by the same
        clock step with identical observable state. Returns how many iterations to skip:
        none past the next refresh, and a tail of real iterations is left so that state
        the body writes but never reads (PRE readiness after a MAC stream, completion
        time, strided register hazards) is rewritten with exact values."""
        (t0, s0), (t1, s1), (t2, s2) = hist
        if not (t0 == t1 == t2):
            return None
        m = remaining
        hz_lat = lp.masks[3]
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
            tail = 1 + (-(-hz_lat // d) if d > 0 else 0)
            m = min(m, remaining - tail)
            if self.refresh and d > 0:
                # skipped iterations and the exact tail both end before the refresh is due
                m = min(m, (c[1] - 1 - c[0]) // d - tail)
        return max(m, 0)

    def _extrapolate(self, hist, m: int, lp: _LP) -> None:
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

    def _replicate(self, lp: _LP, env) -> bool:
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

    # ------------------------------------------------------------- result ----
    def cycles(self) -> int:
        return max((st.done for st in self.chans if st.active), default=0)


def _analyse(lp: _LP):
    """Static loop facts: steady-state eligible?, hazard strides, channel replication."""
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
            and all(coeff(cp, n) == 0 for cp in cmds for n in TIMING_OPERANDS if n != "ch")
            and not any(var in inner for cp in chs for var, _ in cp.ops["ch"][1])):
        s = ks.pop()
        rep = (s, [(c0, tuple((var, c) for var, c in terms if var != v))
                   for c0, terms in (cp.ops["ch"] for cp in chs)])
    return ok, strides, rep, kinds


def _collect(plans, cmds: list, inner: set) -> None:
    for p in plans:
        if isinstance(p, _CP):
            cmds.append(p)
        else:
            if p.var:
                inner.add(p.var)
            _collect(p.body, cmds, inner)
