"""The timing engine's view of a DRAM standard: rule tables compiled to cycle counts.

The rules themselves live in standards/ (one module per DRAM standard, Ramulator2-style:
gddr6_aim.py, hbm2_pim.py, hbm3_pim.py); `standard_for(hw)` picks the one the preset's
`[pim] kind` names. This module turns that table into numbers for one preset
(`compile_rules`, `completion_latency`) and says which scope nodes a concrete command
touches (`touched`). The scheduler (scheduler.py) and the independent checker
(checker.py) both read only what this module compiles; nothing else encodes a timing
number.

A rule says: a command in `prev` issued at cycle t on some node of `level` forbids any
command in `next` on the same node before t + latency. With `window = w`, the bound
counts from the w-th most recent `prev` command instead (tFAW: window 4). Levels are the
nodes a command touches (see `touched`):

  channel    the command bus of a channel (one command per tCMD)
  pc         a pseudo-channel / rank: its data bus, activation window, PU throughput
  bankgroup  a bank group (flat index across pseudo-channels)
  bank       a bank; all-bank commands touch every bank of their `sel` set
  slot       one global-buffer slot of a pseudo-channel (WRGB -> MAC data hazard)
  acc        one accumulator register index of a pseudo-channel (MAC -> RDMAC hazard)

Latencies are expressions over the preset's [pim.timing] names plus `tRDMAC`
(= bursts of one RDMAC x tBL), `tRDL` (the standard's RDMAC latency) and `tPU` (command cycles per PU clock, from [pim.pu]
clock_mhz); a `tokens` rule's latency is multiplied by the PU clocks the earlier
command's tokens take (ceil(n / mac_lanes)).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from speccc.errors import SpecccError
from speccc.targets.pim.standards import STANDARDS, standard_for
from speccc.targets.pim.standards.spec import KINDS, LEVELS, Rule

__all__ = ["KINDS", "LEVELS", "Rule", "STANDARDS", "standard_for", "CompiledRule",
           "compile_rules", "completion_latency", "evaluate", "level_sizes", "timing_values",
           "touched"]


def timing_values(hw) -> dict[str, int]:
    t = hw.pim.timing
    vals = {k: v for k, v in vars(t).items() if k != "tCK_ns"}
    vals["tRDMAC"] = hw.pim.rdmac_bursts * t.tBL
    vals["tPU"] = hw.pim.tPU
    std = standard_for(hw)
    vals["tRDL"] = evaluate(std.rdmac_latency, vals, f"{std.name} rdmac_latency")
    return vals


def evaluate(expr: str, values: dict[str, int], what: str = "") -> int:
    """A sum of terms, each a number, a name or `N*name` (e.g. "tRCDWR+3*tRRD_S-WL")."""
    total, sign, factor = 0, 1, 1
    for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+\*|\d+|[+-]", expr.replace(" ", "")):
        if tok in "+-":
            sign = 1 if tok == "+" else -1
            continue
        if tok.endswith("*"):
            factor = int(tok[:-1])
            continue
        if tok.isdigit():
            total += sign * factor * int(tok)
        elif tok in values:
            total += sign * factor * values[tok]
        else:
            raise SpecccError(f"timing rule {what or expr}: unknown name {tok!r}")
        factor = 1
    return total


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: Rule
    latency: int


def compile_rules(hw) -> list[CompiledRule]:
    """The preset's standard's rules, in table order, with latencies in cycles."""
    vals = timing_values(hw)
    out = []
    for i, r in enumerate(standard_for(hw).rules):
        lat = evaluate(r.latency, vals, r.name)
        if lat < 1:
            raise SpecccError(f"{hw.name}: timing rule {r.name} ({r.latency}) evaluates to {lat};"
                              " latencies must be at least 1 cycle")
        out.append(CompiledRule(i, r, lat))
    return out


def completion_latency(hw) -> dict[str, int]:
    vals = timing_values(hw)
    return {k: evaluate(e, vals, k) for k, e in standard_for(hw).completion.items()}


def level_sizes(pim) -> dict[str, int]:
    return {"channel": 1, "pc": pim.pseudo_channels,
            "bankgroup": pim.pseudo_channels * pim.bank_groups,
            "bank": pim.banks_per_channel, "slot": pim.pseudo_channels * pim.gb_slots_total,
            "acc": pim.pseudo_channels * pim.acc_total}


def touched(pim, kind: str, pc: int, banks: tuple[int, ...], slots: tuple[int, ...],
            accs: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Nodes (channel-local indices) per level that a concrete command acts on."""
    bgs = tuple(sorted({b // pim.banks_per_group for b in banks}))
    return {"channel": (0,), "pc": (pc,), "bankgroup": bgs, "bank": banks,
            "slot": tuple(pc * pim.gb_slots_total + s for s in slots),
            "acc": tuple(pc * pim.acc_total + a for a in accs)}
