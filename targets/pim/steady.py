"""Exact loop acceleration for the timing engine (mixed into scheduler.Scheduler).

Steady state: after each iteration of an eligible loop the engine takes, per touched
channel, a `ChannelSnapshot` (channel.py) of what the loop's own commands can observe:
`ready` waits of the command kinds in the body (relative to the channel clock), register
hazards relabelled by the loop's slot/acc stride, tFAW histories if the body activates,
open rows and counters. Three snapshots with identical observables and equal clock steps
prove the iterations repeat; the state is then advanced m iterations arithmetically
(`ChannelState.advance`), stopping a safe margin before the next refresh and leaving a
tail of real iterations that rewrites the state the body writes but never reads (e.g.
PRE readiness after a MAC stream).

Channel symmetry: a loop whose iterations do the same work on distinct channels (the
loop variable appears only in `ch`, with one stride, and the channels start in
identical states) runs its first iteration and copies the resulting channel state.

What the host class (Scheduler) provides: `chans` (ChannelState per channel), `layout`
(ReadyLayout), `rules` (compiled), `win_lat`, `refresh`, `accel`, `touch` (stack of
channel sets touched) and `run_plans(plans, env)`. This module reads channel state only
through ChannelState's methods and the named snapshots they return.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from speccc.targets.pim.channel import LoopView

FF_MAX_FAILS = 12          # give up on a loop that shows no steady state this soon
FF_MIN_COUNT = 8           # shorter loops are cheaper to simulate than to snapshot
HAZARD_LEVELS = ("slot", "acc")   # indexed by operand value: relabelled by loop stride


class LoopFacts(NamedTuple):
    """What `analyse` finds out about a loop before running it."""
    steady: bool                  # eligible for steady-state extrapolation
    strides: dict                 # hazard level -> index advance per iteration
    replicate: "Replication | None"
    kinds: set                    # command kinds the body issues


class Replication(NamedTuple):
    """The loop's iterations do the same work on channels `stride` apart."""
    stride: int
    offsets: list                 # each command's `ch` Operand without the loop variable


class Step(NamedTuple):
    """One iteration's end: the channels it touched and their snapshots."""
    channels: frozenset
    snaps: dict                   # channel -> ChannelSnapshot


class Skip(NamedTuple):
    iterations: int               # to extrapolate now
    tail: int                     # real iterations to simulate after them


class Operand(NamedTuple):
    """A listing operand compiled for the timing engine: const + sum(coeff * env[var])."""
    const: int
    terms: tuple                  # ((var, coeff), ...)


def compile_operand(v) -> Operand:
    return Operand(v.const, v.terms) if not isinstance(v, str) else Operand(0, ())


def operand_value(op: Operand, env) -> int:
    const, terms = op             # unpacked, not attribute access: this runs per command
    for var, c in terms:
        const += c * env[var]
    return const


class CommandPlan:
    """A listing command prepared for the timing engine: Command, isa.OpSpec,
    {operand: Operand}, and what Scheduler._compile_key makes of them (`key`: env ->
    (ch, row, sig key); `fixed`: that value when no operand varies; `sigs`: sig per key)."""
    __slots__ = ("cmd", "spec", "ops", "key", "fixed", "sigs")


class LoopPlan:
    """A listing loop prepared for the timing engine, with what `analyse` found."""
    __slots__ = ("var", "count", "body", "ff", "strides", "rep", "kinds", "view", "settle")


def compile_key(cp: CommandPlan, banks_per_pc: int) -> None:
    """What `Scheduler._exec` needs of a command's operands, (ch, row, sig key), as one
    generated expression over the loop variables (the hot path evaluates it per
    instance), or the value itself when no operand depends on a loop variable.
    Absent operands: pc from the bank (else 0), bank None, sel/slot/acc 0, row -1,
    n 1; the sig key is (pc, bank, sel, slot, acc, n), see `Scheduler._sig`."""
    cp.sigs = {}
    if cp.spec.kind == "SYNC":
        cp.fixed, cp.key = None, None
        return
    ops = cp.ops

    def expr(name, absent):
        if name not in ops:
            return absent
        const, terms = ops[name]
        return "(" + " + ".join([str(const)] + [f"{c} * env[{var!r}]" for var, c in terms]) + ")"

    bank = expr("bank", "None")
    pc = f"{bank} // {banks_per_pc}" if "bank" in ops else expr("pc", "0")
    key = f"({pc}, {bank}, {expr('sel', '0')}, {expr('slot', '0')}, {expr('acc', '0')}, {expr('n', '1')})"
    source = f"lambda env: ({expr('ch', '0')}, {expr('row', '-1')}, {key})"
    cp.key = eval(source)           # noqa: S307 -- built above from integers and names
    constant = not any(terms for _, terms in ops.values())
    cp.fixed = cp.key({}) if constant else None


class LoopAccel:
    def _loop(self, lp, env) -> None:
        n = lp.count
        if not self.accel:        # one step per command: nothing to snapshot or copy
            var, body, run = lp.var, lp.body, self.run_plans
            for i in range(n):
                if var:
                    env[var] = i
                run(body, env)
            if var:
                env.pop(var, None)
            return
        if self.accel and lp.rep is not None and n > 1 and self._replicate(lp, env):
            return
        use_ff = self.accel and lp.ff and n >= FF_MIN_COUNT
        hist: list = []
        fails, i, resume = 0, 0, 0
        while i < n:
            if lp.var:
                env[lp.var] = i
            self.touch.append(set())
            self.run_plans(lp.body, env)
            t = self.touch.pop()
            self.touch[-1] |= t
            i += 1
            # snapshots start where earlier instances of this loop settled (cheaper)
            if not use_ff or i >= n or fails >= FF_MAX_FAILS or i + 2 < lp.settle or i < resume:
                continue
            if lp.view is None:
                lp.view = self._view(lp)
            hist.append(Step(frozenset(t), {ch: self.chans[ch].snapshot(self.layout, lp.view, i,
                                                                         self.win_lat) for ch in t}))
            if len(hist) < 3:
                continue
            hist = hist[-3:]
            found = self._steady(hist, n - i, lp)
            if found is None:
                fails += 1
                continue
            m, tail = found.iterations, found.tail
            if m > 0:
                if lp.settle == 0:
                    lp.settle = i
                self._extrapolate(hist, m, lp)
                i += m
            # the tail (and a refresh right after it) is simulated without snapshots
            hist, fails, resume = [], 0, i + tail + 1
        if lp.var:
            env.pop(lp.var, None)

    def _view(self, lp) -> LoopView:
        """What a loop's iterations can observe: entries of the kinds its commands have.
        Also the tail of real iterations needed after a skip (see _steady)."""
        fmask = np.array([k in lp.kinds or k == "*" for k in self.layout.fixed_kind], dtype=bool)
        hmask = np.array([h.kind in lp.kinds for h in self.layout.hazards], dtype=bool)
        acts = bool(lp.kinds & {"ACT", "ACTab"})
        lat = 0
        for cr in self.rules:
            r = cr.rule
            if r.level in HAZARD_LEVELS and lp.strides.get(r.level) and set(r.prev) & lp.kinds:
                lat = max(lat, cr.latency)
        return LoopView(fmask, hmask, acts, lat, lp.strides)

    def _steady(self, hist, remaining: int, lp):
        """Iterations repeat exactly once three consecutive snapshots differ by the same
        clock step with identical observable state. Returns (iterations to skip, tail):
        none past the next refresh, and a tail of real iterations is left so that state
        the body writes but never reads (PRE readiness after a MAC stream, completion
        time, strided register hazards) is rewritten with exact values."""
        h0, h1, h2 = hist
        if not (h0.channels == h1.channels == h2.channels):
            return None
        hz_lat = lp.view.hazard_latency
        steps = {}
        for ch in h2.channels:
            a, b, c = h0.snaps[ch], h1.snaps[ch], h2.snaps[ch]
            d = b.clock - a.clock
            if (c.clock - b.clock != d or not (a.refresh_due == b.refresh_due == c.refresh_due)
                    or not (a.observed == b.observed == c.observed)):
                return None
            for x, y, z in zip(a.open_rows, b.open_rows, c.open_rows):
                if (x < 0 or y < 0 or z < 0) and not (x == y == z):
                    return None            # a bank opened or closed: not a repeat
                if z - y != y - x:
                    return None
            if any(z - y != y - x for x, y, z in zip(a.counters, b.counters, c.counters)):
                return None
            steps[ch] = d
        tail = max([1] + [1 + -(-hz_lat // d) for d in steps.values() if d > 0])
        m = remaining - tail
        for ch, d in steps.items():
            if self.refresh and d > 0:
                # skipped iterations and the exact tail both end before the refresh is due
                c = h2.snaps[ch]
                m = min(m, (c.refresh_due - 1 - c.clock) // d - tail)
        return Skip(max(m, 0), tail)

    def _extrapolate(self, hist, m: int, lp) -> None:
        prev, last = hist[1], hist[2]
        for ch, snap in last.snaps.items():
            self.chans[ch].advance(self.layout, lp.view, prev.snaps[ch], snap, m)

    def _replicate(self, lp, env) -> bool:
        stride, offsets = lp.rep.stride, lp.rep.offsets
        env[lp.var] = 0
        base = sorted({operand_value(o, env) for o in offsets})
        groups = [[a + stride * i for a in base] for i in range(lp.count)]
        flat = [c for g in groups for c in g]
        if len(set(flat)) != len(flat) or min(flat) < 0 or max(flat) >= len(self.chans):
            env.pop(lp.var)
            return False
        ref = self.chans[flat[0]].key()
        if any(self.chans[c].key() != ref for c in flat[1:]):
            env.pop(lp.var)
            return False
        before = {a: self.chans[a].counters() for a in base}
        self.touch.append(set())
        self.run_plans(lp.body, env)
        t = self.touch.pop()
        self.touch[-1] |= t
        for g in groups[1:]:
            for a, c in zip(base, g):
                self.chans[c] = self.chans[a].replica(self.chans[c], before[a])
        self.touch[-1].update(flat)
        env.pop(lp.var)
        return True


def analyse(lp, timing_operands) -> LoopFacts:
    """Static loop facts: steady-state eligible?, hazard strides, channel replication,
    and the command kinds the body issues."""
    cmds, inner = [], set()
    _collect(lp.body, cmds, inner)
    v = lp.var
    kinds = {cp.spec.kind for cp in cmds}
    if v is None:
        return LoopFacts(True, {}, None, kinds)

    def coeff(cp, name):
        return dict(cp.ops[name].terms).get(v, 0) if name in cp.ops else 0

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
            and not any(var in inner for cp in chs for var, _ in cp.ops["ch"].terms)):
        s = ks.pop()
        rep = Replication(s, [Operand(o.const, tuple((var, c) for var, c in o.terms if var != v))
                              for o in (cp.ops["ch"] for cp in chs)])
    return LoopFacts(ok, strides, rep, kinds)


def _collect(plans, cmds: list, inner: set) -> None:
    for p in plans:
        if isinstance(p, CommandPlan):
            cmds.append(p)
        else:
            if p.var:
                inner.add(p.var)
            _collect(p.body, cmds, inner)
