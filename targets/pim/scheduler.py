"""Timing engine: issues every command at its earliest legal cycle, in order per channel.

State per channel (channel.ChannelState): a `ready` vector (earliest cycle per (level
node, command kind), filled forward from the preset's DRAM standard's rule table, see
standards/ and timing.py), tFAW histories, open rows, the next refresh due time,
completion time, and event counters. Channels are independent except at SYNC.

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

from speccc.errors import SpecccError
from speccc.targets.pim.isa import OPS
from speccc.targets.pim.listing import Command, Loop, Program
from speccc.targets.pim.channel import COUNTERS, ChannelState
from speccc.targets.pim.signatures import CommandSignatures
from speccc.targets.pim.steady import (CommandPlan, LoopAccel, LoopPlan, analyse, compile_key,
                                       compile_operand)
from speccc.targets.pim.timing import compile_rules, completion_latency, standard_for

__all__ = ["COUNTERS", "Scheduler", "TraceEntry"]

TIMING_OPERANDS = ("ch", "pc", "bank", "sel", "row", "slot", "acc", "n")


@dataclass
class TraceEntry:
    cycle: int
    op: str
    args: dict            # concrete operand values
    line: int | None      # listing line (None for controller-injected commands)
    auto: bool = False


class Scheduler(CommandSignatures, LoopAccel):
    """`compiled`: without acceleration or a trace, issue commands in flat.py's numba
    loop (None: when numba is installed and the listing is big enough; True: always;
    False: always this module's Python, the oracle)."""

    def __init__(self, hw, *, refresh: bool = True, accelerate: bool = True,
                 record: bool = False, name: str = "<listing>", compiled: bool | None = None):
        self.hw, self.pim = hw, hw.pim
        self.refresh, self.record, self.name = refresh, record, name
        self.accel = accelerate and not record
        self.compiled = compiled
        self.trace: list[TraceEntry] = []
        self.standard = standard_for(hw)
        self.rules = compile_rules(hw)
        self.done_lat = completion_latency(hw)
        self.tREFI = self.pim.timing.tREFI
        # history entries older than the longest window latency can no longer bind
        self.win_lat = max([cr.latency for cr in self.rules if cr.rule.window > 1], default=0)
        self.max_lat = max(cr.latency for cr in self.rules)
        self.layout = self._layout()
        self.chans = [ChannelState(self.layout.size, self.pim.banks_per_channel, self.tREFI)
                      for _ in range(self.pim.channels)]
        self._sigs: dict = {}
        self.touch: list[set] = [set()]

    # --------------------------------------------------------------- plan ----
    def _plan(self, body) -> list:
        out = []
        for node in body:
            if isinstance(node, Command):
                cp = CommandPlan()
                cp.cmd, cp.spec = node, OPS[node.op]
                if cp.spec.kind != "SYNC" and cp.spec.kind not in self.standard.commands:
                    raise SpecccError(f"{node.op} is not a command of {self.standard.name} "
                                      f"({self.hw.name})",
                                      location=f"{self.name}:{node.line}:{node.col}")
                cp.ops = {n: compile_operand(v) for n, v in node.args if n in TIMING_OPERANDS}
                compile_key(cp, self.pim.banks_per_pc)
                out.append(cp)
            elif isinstance(node, Loop):
                lp = LoopPlan()
                lp.var, lp.count, lp.body = node.var, node.count, self._plan(node.body)
                facts = analyse(lp, TIMING_OPERANDS)
                lp.ff, lp.strides, lp.rep, lp.kinds = facts.steady, facts.strides, facts.replicate, facts.kinds
                lp.view, lp.settle = None, 0
                out.append(lp)
        return out

    # ---------------------------------------------------------------- run ----
    def run(self, program: Program) -> None:
        plans = self._plan(program.body)
        if not self.accel and not self.record and self.compiled is not False:
            from speccc.targets.pim import flat
            if (self.compiled or flat.worth_it(plans)) and flat.available():
                return flat.run(self, plans)
            if self.compiled:
                raise SpecccError("compiled timing needs numba (pip install 'speccc[fast]')")
        self.run_plans(plans, {})

    def run_plans(self, plans, env) -> None:
        for p in plans:
            if isinstance(p, CommandPlan):
                self._exec(p, env)
            else:
                self._loop(p, env)

    def _where(self, cp, env) -> str:
        it = ", ".join(f"{k}={v}" for k, v in env.items())
        return f"{self.name}:{cp.cmd.line}:{cp.cmd.col}", (f" [iteration {it}]" if it else "")

    def _exec(self, cp: CommandPlan, env) -> None:
        """One command instance: the hot path of the timing engine (one call per issued
        command without acceleration), so `_earliest` and `_issue` are inlined here for
        listing commands; `_issue` remains the one path for traces and refresh."""
        spec = cp.spec
        fixed = cp.fixed
        if fixed is None:
            if cp.key is None:
                return self._sync(cp)
            fixed = cp.key(env)
        ch, row, key = fixed
        sig = cp.sigs.get(key)
        if sig is None:
            pc, bank, sel, slot, acc, n = key
            sig = cp.sigs[key] = self._sig(spec.kind, spec, pc, bank, sel, slot, acc, n)
        st = self.chans[ch]
        if spec.state != "none":
            self._check_state(st, spec, sig, row, cp, env, ch)
        self.touch[-1].add(ch)
        r = st.ready
        t = st.floor
        for i in sig.check:
            if r[i] > t:
                t = r[i]
        stamp = cp.cmd.stamp
        if stamp is not None and stamp >= t:
            t = stamp
        if not st.active:
            # a channel owes refreshes from its first use on, on the common tREFI grid
            st.active = True
            st.due = (t // self.tREFI + 1) * self.tREFI
        if (self.refresh and t >= st.due) or self.record or sig.wins:
            while self.refresh and t >= st.due:
                self._refresh_until(ch, t)
                t = self._earliest(st, sig, stamp)
            return self._issue(ch, st, sig, spec, t, row, False, cp.cmd, env)
        # _issue without windows, refresh or a trace (kept in step with it)
        for i, lat in sig.updates:
            v = t + lat
            if r[i] < v:
                r[i] = v
        st.floor = t
        if t + sig.done > st.done:
            st.done = t + sig.done
        if spec.opens:
            rows = st.rows
            for b in sig.banks:
                rows[b] = row
            st.opened.clear()
        elif spec.closes:
            rows = st.rows
            for b in sig.banks:
                rows[b] = -1
            st.opened.clear()
        c = st.cnt
        for i, d in sig.cnt:
            c[i] += d

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
        if need == "open":   # the common case: every bank has the row open
            seen = (id(sig), row)
            if seen in st.opened:
                return
            for b in sig.banks:
                if rows[b] != row:
                    break
            else:
                st.opened.add(seen)
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
            st.opened.clear()
        elif spec.closes:
            for b in sig.banks:
                st.rows[b] = -1
            st.opened.clear()
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
        """The standards' "all-bank" refresh style (spec.REFRESH_STYLES), the only one
        the controller implements: Standard refuses any other."""
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

    def _refresh_until(self, ch: int, t: int) -> None:
        """Every refresh due at or before cycle t, the channel idling in between. From the
        third on they repeat the second exactly, tREFI later (all rule latencies are
        shorter than tREFI), so long idle gaps are advanced arithmetically."""
        st = self.chans[ch]
        while st.due <= t:
            n = (t - st.due) // self.tREFI + 1
            if n < 4 or not self.accel or self.max_lat >= self.tREFI:
                self._do_refresh(ch)
                continue
            self._do_refresh(ch)
            before, cnt0 = list(st.ready), list(st.cnt)
            self._do_refresh(ch)
            st.repeat(before, cnt0, n - 2, self.tREFI)

    # --------------------------------------------------------------- sync ----
    def _sync(self, cp) -> None:
        chans = self.chans
        barrier = max(max(st.done, st.floor) for st in chans)
        for ch, st in enumerate(chans):
            if self.refresh and st.active:
                self._refresh_until(ch, barrier)
        for st in chans:
            if st.floor < barrier:
                st.floor = barrier
        self.touch[-1].update(range(len(chans)))
        if self.record:
            self.trace.append(TraceEntry(barrier, "SYNC", {}, cp.cmd.line))

    # ------------------------------------------------------------- result ----
    def cycles(self) -> int:
        return max((st.done for st in self.chans if st.active), default=0)
