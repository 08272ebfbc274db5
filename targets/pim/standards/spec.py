"""The vocabulary a DRAM standard is written in: scopes, command classes, `Rule`, `Standard`.

A standard module (gddr6_aim.py, hbm2_pim.py, hbm3_pim.py) builds one `Standard` from
these names; the timing engine (timing.py -> scheduler.py, checker.py) only ever reads a
`Standard`, so nothing outside standards/ encodes a timing rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# Scopes the engine keeps state for (timing.touched decides which nodes a command hits).
# A standard says what each means on its device; it cannot invent new ones, because the
# engine lays out its `ready` vector per scope.
LEVELS = ("channel", "pc", "bankgroup", "bank", "slot", "acc")

# Timing classes of the ISA's commands (isa.OPS[...].kind), SYNC aside: it is a barrier,
# not a DRAM command.
KINDS = ("ACT", "ACTab", "PRE", "PREab", "PREA", "REF", "RD", "WR", "WRGB",
         "MAC", "MACab", "RDMAC", "AF", "EWMUL", "EWADD")

# Command classes the rule tables are written with.
ACTS = ("ACT", "ACTab")
PRES = ("PRE", "PREab", "PREA")
MACS = ("MAC", "MACab")
COLRD = ("RD",) + MACS            # column reads of a bank's row buffer
BUSWR = ("WR", "WRGB")            # writes that use the pseudo-channel data bus
BUSRD = ("RD", "RDMAC")           # reads that use the pseudo-channel data bus
PUOPS = ("AF", "EWMUL", "EWADD")

# Refresh styles the scheduler's controller implements (scheduler._do_refresh).
REFRESH_STYLES = {
    "all-bank": "every tREFI: PREA (if rows are open) and REF on every pseudo-channel, "
                "then the open rows are re-activated",
}
# What refresh costs a channel on average, per style: the fraction of its time its banks
# are blocked (phase.py charges it across phase boundaries). All-bank REF blocks every
# bank of a pseudo-channel for tRFC once per tREFI.
REFRESH_BLOCKED = {"all-bank": ("tRFC", "tREFI")}

# Commands that need the device in its PIM (all-bank compute) mode: a listing using any
# of them pays its standard's mode switches once (phase.py).
PIM_MODE_KINDS = ("ACTab", "PREab", "WRGB", "MAC", "MACab", "RDMAC", "AF", "EWMUL", "EWADD")

# Cycles after issue until a command's effect is complete (SYNC and program end). Shared
# by the three standards: it follows from the ISA, the numbers from each preset.
COMPLETION = MappingProxyType({
    "ACT": "tRCD", "ACTab": "tRCD", "PRE": "tRP", "PREab": "tRP", "PREA": "tRP",
    "REF": "tRFC", "RD": "CL+tBL", "WR": "WL+tBL", "WRGB": "WL+tBL",
    "MAC": "tMACL", "MACab": "tMACL", "RDMAC": "tRDL+tRDMAC",
    "AF": "tPUOP", "EWMUL": "tPUOP", "EWADD": "tPUOP",
})


@dataclass(frozen=True)
class Rule:
    """A `next` command on the same `level` node as an earlier `prev` command waits
    `latency` cycles after it (with `window = w`: after the w-th most recent one)."""
    name: str                 # what a violation is called (`tRCD violated`)
    level: str
    prev: tuple[str, ...]
    next: tuple[str, ...]
    latency: str              # expression over [pim.timing] names (+ tRDMAC, tRDL), e.g. "WL+tBL"
    window: int = 1
    why: str = ""
    tokens: bool = False      # latency per PU clock the prev command's tokens take:
                              # x ceil(n / mac_lanes) for a MACN.ab of n tokens


@dataclass(frozen=True)
class Overhead:
    """A fixed cost in command cycles (expression over [pim.timing] names; `N*name` allowed)
    that a listing pays once, e.g. entering PIM mode, with where the figure comes from.
    Its energy is the DRAM work of its command sequence, per pseudo-channel: `acts` row
    activations (act_pj each) and `bursts` bursts written from the host (the bus's
    external_pj_per_bit); a sequence of mode-register commands alone moves no data and
    opens no row, so it costs nothing in speccc's energy model (no per-command term)."""
    name: str
    latency: str
    why: str
    acts: int = 0
    bursts: int = 0


@dataclass(frozen=True)
class Standard:
    """One DRAM standard as data, Ramulator2-style: what its scopes mean, the commands
    its controller accepts, its timing rules (walked in order: the checker names the
    first violated one), completion latencies and refresh style."""
    name: str
    doc: str                                  # one line: the device and where its numbers come from
    scopes: Mapping[str, str]                 # LEVELS -> what that scope is on this device
    rules: tuple[Rule, ...]
    commands: tuple[str, ...] = KINDS         # timing classes a listing may use
    completion: Mapping[str, str] = field(default_factory=lambda: COMPLETION)
    refresh: str = "all-bank"
    rdmac_latency: str = "CL"                 # tRDL: RDMAC issue to its first data on the bus
    rdmac_why: str = "accumulators leave like a DRAM read (no source for a register path)"
    mode_switch: tuple[Overhead, ...] = ()    # paid once per listing that uses PIM_MODE_KINDS

    def __post_init__(self):
        # a malformed table is a bug in its standard module: fail at import, not mid-run
        def need(ok, what):
            if not ok:
                raise ValueError(f"standard {self.name}: {what}")
        need(set(self.scopes) == set(LEVELS), f"scopes must be exactly {LEVELS}")
        need(set(self.commands) <= set(KINDS), "commands must be ISA timing classes (KINDS)")
        need(set(self.completion) >= set(self.commands), "a command has no completion latency")
        need(self.refresh in REFRESH_STYLES, f"refresh must be one of {sorted(REFRESH_STYLES)}")
        for r in self.rules:
            need(r.level in LEVELS and r.window >= 1, f"rule {r.name}: bad level or window")
            need(set(r.prev) | set(r.next) <= set(self.commands),
                 f"rule {r.name} names a command the standard does not accept")
