"""Independent checker: re-verifies a flat, cycle-stamped command trace.

It shares only the specification with the emulator (the preset's DRAM standard in
standards/, compiled by timing.py: rule table, completion table, command set; the op
table in isa.py); the algorithm is separate: the scheduler
pushes `ready` times forward, the checker looks backward at each node's issue history,
and it keeps its own bank-state machine and its own address decoding.

Checked, command by command in trace order:
- issue order: per channel, cycles never decrease (SYNC: nothing on any channel before
  the barrier, and the barrier is not before any earlier command completes);
- bank state: ACT needs a closed bank, RD/WR/MAC the named row open, REF a closed
  pseudo-channel;
- every rule of the timing table (window rules against the w-th most recent command);
- refresh: at most REFRESH_POSTPONE + 1 refresh intervals without a REF on a
  pseudo-channel that has commands.
Where cycle stamps come from: a listing whose every command carries `@CYCLE` is checked
as written; a listing with no stamps is first state-checked in program order, then
scheduled by the emulator and its issued trace (with injected refresh) is checked.
"""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from speccc.errors import CheckFailed, SpecccError
from speccc.targets.pim.isa import OPS, ew_slots, token_groups, token_operands
from speccc.targets.pim.listing import Command, Loop, Program, check_ranges, check_work
from speccc.targets.pim.timing import completion_latency, compile_rules, standard_for

REFRESH_POSTPONE = 8          # JEDEC lets a controller postpone up to 8 REFs
MAX_FLAT = 2_000_000          # flat commands the checker will expand


@dataclass
class Entry:
    cycle: int
    op: str
    args: dict
    line: int | None
    auto: bool = False


@dataclass
class Report:
    commands: int       # commands verified (including controller refresh)
    last_issue: int     # cycle of the last command
    stamped: bool       # stamps came from the listing (else from the emulator)


class _Checker:
    def __init__(self, hw, name: str):
        self.hw, self.p, self.name = hw, hw.pim, name
        self.standard = standard_for(hw)
        self.rules = compile_rules(hw)
        self.by_next = defaultdict(list)
        self.by_prev = defaultdict(list)
        for cr in self.rules:
            for k in cr.rule.next:
                self.by_next[k].append(cr)
            for k in cr.rule.prev:
                self.by_prev[k].append(cr)
        self.done_lat = completion_latency(hw)
        self.hist: dict = {}
        self.rows: dict = {}
        self.last: dict = {}          # channel -> (cycle, line)
        self.barrier = (0, None)
        self.completion = (0, None)   # latest completion so far and its line
        self.last_ref: dict = {}

    def fail(self, e: Entry, msg: str):
        where = f"{self.name}:{e.line}" if e.line is not None else \
            f"{self.name}: controller {e.op} at cycle {e.cycle}"
        raise CheckFailed(f"{where}: {msg}")

    def nodes(self, e: Entry) -> dict:
        """Nodes per level this command touches (own decoding of the address)."""
        p, spec, a = self.p, OPS[e.op], e.args
        ch = a["ch"]
        per, S = p.banks_per_pc, p.pu.banks_per_pu
        if "bank" in a:
            pc, banks = a["bank"] // per, [a["bank"]]
        else:
            pc = a.get("pc", 0)
            if e.op in ("PREA", "REF"):
                banks = [pc * per + i for i in range(per)]
            elif spec.all_bank:
                banks = [pc * per + i for i in range(per) if i % S == a.get("sel", 0)]
            else:
                banks = []
        slots = []
        if e.op in ("WRGB", "MAC", "MAC.ab"):
            slots = [a["slot"]]
        elif e.op in ("EWMUL", "EWADD"):
            slots = list(range(a["slot"], a["slot"] + ew_slots(p)))
        accs = [a["acc"]] if "acc" in a else []
        if spec.tokens:     # MACN.ab: every token's buffered vector and accumulator set
            slots = list(token_operands(p, "slot", a["slot"], a["n"]))
            accs = list(token_operands(p, "acc", a["acc"], a["n"]))
        return {"channel": [(ch,)], "pc": [(ch, pc)],
                "bankgroup": sorted({(ch, b // p.banks_per_group) for b in banks}),
                "bank": [(ch, b) for b in banks], "slot": [(ch, pc, s) for s in slots],
                "acc": [(ch, pc, x) for x in accs]}, ch, pc, banks

    def state(self, e: Entry, ch: int, pc: int, banks: list) -> None:
        spec, a = OPS[e.op], e.args
        if spec.state == "closed":
            for b in banks:
                if self.rows.get((ch, b), -1) >= 0:
                    self.fail(e, f"{e.op} to bank {b} of channel {ch}, which has row "
                                 f"{self.rows[(ch, b)]} open")
        elif spec.state == "open":
            for b in banks:
                have = self.rows.get((ch, b), -1)
                if have != a["row"]:
                    what = "closed" if have < 0 else f"open at row {have}"
                    self.fail(e, f"{e.op} needs row {a['row']} open in bank {b} of channel "
                                 f"{ch}, which is {what}")
        elif spec.state == "pc_closed":
            for b in range(pc * self.p.banks_per_pc, (pc + 1) * self.p.banks_per_pc):
                if self.rows.get((ch, b), -1) >= 0:
                    self.fail(e, f"REF with bank {b} of channel {ch} open")
        if spec.opens:
            for b in banks:
                self.rows[(ch, b)] = a["row"]
        elif spec.closes:
            for b in banks:
                self.rows[(ch, b)] = -1

    def step(self, e: Entry) -> None:
        if e.op == "SYNC":
            done, line = self.completion
            if e.cycle < done:
                self.fail(e, f"SYNC at cycle {e.cycle} before line {line} completes at {done}")
            self.barrier = (e.cycle, e.line)
            return
        kind = OPS[e.op].kind
        if kind not in self.standard.commands:
            self.fail(e, f"{e.op} is not a command of {self.standard.name}")
        nodes, ch, pc, banks = self.nodes(e)
        prev = self.last.get(ch)
        if prev is not None and e.cycle < prev[0]:
            self.fail(e, f"issue order violated: cycle {e.cycle} is before cycle {prev[0]} of "
                         f"line {prev[1]} on channel {ch}")
        if e.cycle < self.barrier[0]:
            self.fail(e, f"issued at cycle {e.cycle}, before the SYNC at cycle {self.barrier[0]}"
                         f" (line {self.barrier[1]})")
        self.state(e, ch, pc, banks)
        bad = []
        for cr in self.by_next[kind]:
            for n in nodes[cr.rule.level]:
                h = self.hist.get((cr.index, n))
                if h is not None and len(h) >= cr.rule.window:
                    before = h[-cr.rule.window]
                    if e.cycle - before[0] < cr.latency * before[3]:
                        bad.append((cr, before))
        if bad:
            cr, (t0, line0, op0, groups) = bad[0]
            others = sorted({b[0].rule.name for b in bad[1:]} - {cr.rule.name})
            what = f"{cr.rule.window}th previous " if cr.rule.window > 1 else ""
            self.fail(e, f"{cr.rule.name} violated: {e.op} at cycle {e.cycle} is "
                         f"{e.cycle - t0} cycles after the {what}{op0} at cycle {t0} "
                         f"(line {line0}); needs {cr.latency * groups}"
                         + (f" (also violates {', '.join(others)})" if others else ""))
        limit = (REFRESH_POSTPONE + 1) * self.p.timing.tREFI
        for p in range(self.p.pseudo_channels):
            last = self.last_ref.setdefault((ch, p), e.cycle)   # first use counts as fresh
            if e.cycle - last > limit:
                self.fail(e, f"refresh overdue: no REF on channel {ch} pc {p} for "
                             f"{e.cycle - last} cycles (limit {limit})")
        if kind == "REF":
            self.last_ref[(ch, pc)] = e.cycle
        for cr in self.by_prev[kind]:
            for n in nodes[cr.rule.level]:
                h = self.hist.get((cr.index, n))
                if h is None:
                    h = self.hist[(cr.index, n)] = deque(maxlen=cr.rule.window)
                # a `tokens` rule binds for the PU clocks the earlier command's tokens take
                groups = token_groups(self.p, e.args.get("n", 1)) if cr.rule.tokens else 1
                h.append((e.cycle, e.line, e.op, groups))
        self.last[ch] = (e.cycle, e.line)
        end = e.cycle + self.done_lat[kind]
        if not e.auto and end > self.completion[0]:
            self.completion = (end, e.line)


def check_trace(entries, hw, name: str = "<trace>") -> int:
    """Verify a cycle-stamped trace; raise CheckFailed at the first violation."""
    c = _Checker(hw, name)
    n = 0
    for e in entries:
        c.step(e if isinstance(e, Entry) else Entry(e.cycle, e.op, e.args, e.line, e.auto))
        n += 1
    return n


def flatten(prog: Program, limit: int = MAX_FLAT) -> list[Entry]:
    """Expand loops into concrete commands (cycle = stamp or -1), in program order.
    The size is estimated first (empty loops count), so nothing large is ever walked."""
    check_work(prog, limit, "the checker expands loops flat")
    out: list[Entry] = []

    def walk(body, env):
        for node in body:
            if isinstance(node, Command):
                args = {k: (v if isinstance(v, str) else v.eval(env)) for k, v in node.args}
                out.append(Entry(-1 if node.stamp is None else node.stamp, node.op, args, node.line))
            elif isinstance(node, Loop):
                for i in range(node.count):
                    walk(node.body, {**env, node.var: i} if node.var else env)
    walk(prog.body, {})
    return out


def check_program(prog: Program, hw, *, refresh: bool = True) -> Report:
    """`asm --check`: verify stamps as written, or schedule an unstamped listing first."""
    check_ranges(prog, hw)
    flat = flatten(prog)
    stamped = [e.cycle >= 0 for e in flat]
    if any(stamped) and not all(stamped):
        first = next(e for e in flat if e.cycle < 0)
        raise SpecccError(f"{prog.name}:{first.line}: either every command carries an @cycle "
                          "stamp or none does")
    if flat and all(stamped):
        n = check_trace(flat, hw, prog.name)
        return Report(n, max(e.cycle for e in flat), True)
    # unstamped: program-order state check first (a deleted ACT is a check failure, not
    # a scheduling error), then the emulator's issued trace
    c = _Checker(hw, prog.name)
    for e in flat:
        if e.op != "SYNC":
            _, ch, pc, banks = c.nodes(e)
            c.state(e, ch, pc, banks)
    from speccc.targets.pim.emulator import time_program
    res = time_program(prog, hw, refresh=refresh, record=True)
    n = check_trace(res.trace, hw, prog.name)
    return Report(n, max((e.cycle for e in res.trace), default=0), False)
