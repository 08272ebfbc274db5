"""DRAM + PIM timing constraints as ONE declarative table, Ramulator2-style.

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
(= bursts of one RDMAC x tBL). The scheduler (scheduler.py) and the independent checker
(checker.py) both read this table; nothing else encodes a timing number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from speccc.errors import SpecccError

LEVELS = ("channel", "pc", "bankgroup", "bank", "slot", "acc")
KINDS = ("ACT", "ACTab", "PRE", "PREab", "PREA", "REF", "RD", "WR", "WRGB",
         "MAC", "MACab", "RDMAC", "AF", "EWMUL", "EWADD")

ACTS = ("ACT", "ACTab")
PRES = ("PRE", "PREab", "PREA")
MACS = ("MAC", "MACab")
COLRD = ("RD",) + MACS            # column reads of a bank's row buffer
BUSWR = ("WR", "WRGB")            # writes that use the pseudo-channel data bus
BUSRD = ("RD", "RDMAC")           # reads that use the pseudo-channel data bus
PUOPS = ("AF", "EWMUL", "EWADD")


@dataclass(frozen=True)
class Rule:
    name: str                 # what a violation is called (`tRCD violated`)
    level: str
    prev: tuple[str, ...]
    next: tuple[str, ...]
    latency: str              # expression over timing names
    window: int = 1
    why: str = ""


R = Rule
RULES: tuple[Rule, ...] = (
    # --- channel: command bus
    R("tCMD", "channel", KINDS, KINDS, "tCMD", why="one command per slot on the command bus"),
    # --- pseudo-channel: activations, data bus, PU throughput
    R("tRRD_S", "pc", ("ACT",), ("ACT",), "tRRD_S"),
    R("tFAW", "pc", ("ACT",), ("ACT",), "tFAW", 4, why="at most 4 ACTs in any tFAW window"),
    R("tFAW", "pc", ("ACTab",), ACTS, "tFAW", why="an all-bank ACT spends a whole window"),
    R("tFAW", "pc", ("ACT",), ("ACTab",), "tFAW", why="an all-bank ACT needs an empty window"),
    R("tCCD_S", "pc", COLRD, COLRD, "tCCD_S"),
    R("tCCD_S", "pc", BUSWR, BUSWR, "tCCD_S"),
    R("tBL", "pc", ("RD",), BUSRD, "tBL", why="read data occupy the bus"),
    R("tBL", "pc", BUSWR, BUSWR, "tBL", why="write data occupy the bus"),
    R("tRDMAC", "pc", ("RDMAC",), BUSRD, "tRDMAC", why="RDMAC data occupy the bus"),
    R("tRTW", "pc", ("RD",), BUSWR, "CL+tBL+2-WL", why="read-to-write bus turnaround"),
    R("tRTW", "pc", ("RDMAC",), BUSWR, "CL+tRDMAC+2-WL", why="read-to-write bus turnaround"),
    R("tWTR_S", "pc", BUSWR, BUSRD, "WL+tBL+tWTR_S"),
    R("tCCD_AB", "pc", ("MACab",), ("MACab",), "tCCD_AB", why="PU rate / power limit"),
    # --- bank group
    R("tRRD_L", "bankgroup", ("ACT",), ("ACT",), "tRRD_L"),
    R("tCCD_L", "bankgroup", COLRD, COLRD, "tCCD_L"),
    R("tCCD_L", "bankgroup", ("WR",), ("WR",), "tCCD_L"),
    R("tWTR_L", "bankgroup", ("WR",), COLRD, "WL+tBL+tWTR_L"),
    # --- bank
    R("tRC", "bank", ACTS, ACTS, "tRC"),
    R("tRCD", "bank", ACTS, ("RD",), "tRCD"),
    R("tRCDWR", "bank", ACTS, ("WR",), "tRCDWR"),
    R("tRCD_MAC", "bank", ACTS, MACS, "tRCD_MAC"),
    R("tRAS", "bank", ACTS, PRES, "tRAS"),
    R("tRP", "bank", PRES, ACTS, "tRP"),
    R("tRTP", "bank", COLRD, PRES, "tRTP"),
    R("tWR", "bank", ("WR",), PRES, "WL+tBL+tWR"),
    R("tRC", "bank", ACTS, ("REF",), "tRC"),
    R("tRP", "bank", PRES, ("REF",), "tRP"),
    R("tRFC", "bank", ("REF",), ACTS + ("REF",), "tRFC", why="refresh blocks the banks"),
    # --- PU registers (data hazards)
    R("tGB", "slot", ("WRGB",), MACS + ("EWMUL", "EWADD"), "WL+tBL",
      why="global-buffer data land WL+tBL after WRGB"),
    R("tMACL", "acc", MACS, ("RDMAC",) + PUOPS, "tMACL", why="accumulator ready after the pipeline"),
    R("tPUOP", "acc", PUOPS, ("RDMAC",) + PUOPS + MACS, "tPUOP"),
)

# Cycles after issue until a command's effect is complete (SYNC and program end).
COMPLETION = {
    "ACT": "tRCD", "ACTab": "tRCD", "PRE": "tRP", "PREab": "tRP", "PREA": "tRP",
    "REF": "tRFC", "RD": "CL+tBL", "WR": "WL+tBL", "WRGB": "WL+tBL",
    "MAC": "tMACL", "MACab": "tMACL", "RDMAC": "CL+tRDMAC",
    "AF": "tPUOP", "EWMUL": "tPUOP", "EWADD": "tPUOP",
}


def timing_values(hw) -> dict[str, int]:
    t = hw.pim.timing
    vals = {k: v for k, v in vars(t).items() if k != "tCK_ns"}
    vals["tRDMAC"] = hw.pim.rdmac_bursts * t.tBL
    return vals


def evaluate(expr: str, values: dict[str, int], what: str = "") -> int:
    total, sign = 0, 1
    for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\d+|[+-]", expr.replace(" ", "")):
        if tok in "+-":
            sign = 1 if tok == "+" else -1
            continue
        if tok.isdigit():
            total += sign * int(tok)
        elif tok in values:
            total += sign * values[tok]
        else:
            raise SpecccError(f"timing rule {what or expr}: unknown name {tok!r}")
    return total


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: Rule
    latency: int


def compile_rules(hw) -> list[CompiledRule]:
    vals = timing_values(hw)
    out = []
    for i, r in enumerate(RULES):
        lat = evaluate(r.latency, vals, r.name)
        if lat < 1:
            raise SpecccError(f"{hw.name}: timing rule {r.name} ({r.latency}) evaluates to {lat};"
                              " latencies must be at least 1 cycle")
        out.append(CompiledRule(i, r, lat))
    return out


def completion_latency(hw) -> dict[str, int]:
    vals = timing_values(hw)
    return {k: evaluate(e, vals, k) for k, e in COMPLETION.items()}


def level_sizes(pim) -> dict[str, int]:
    return {"channel": 1, "pc": pim.pseudo_channels,
            "bankgroup": pim.pseudo_channels * pim.bank_groups,
            "bank": pim.banks_per_channel, "slot": pim.pseudo_channels * pim.gb_slots,
            "acc": pim.pseudo_channels * pim.pu.acc_regs}


def touched(pim, kind: str, pc: int, banks: tuple[int, ...], slots: tuple[int, ...],
            accs: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Nodes (channel-local indices) per level that a concrete command acts on."""
    bgs = tuple(sorted({b // pim.banks_per_group for b in banks}))
    return {"channel": (0,), "pc": (pc,), "bankgroup": bgs, "bank": banks,
            "slot": tuple(pc * pim.gb_slots + s for s in slots),
            "acc": tuple(pc * pim.pu.acc_regs + a for a in accs)}
