"""The PIM command set as one table: operands, timing class, bank-state rule, events.

Everything else (parser checks, range checks, emulator, checker, ISA.md) reads this table
rather than special-casing opcodes. See ISA.md for the prose semantics of each command.
"""
from __future__ import annotations

from dataclasses import dataclass

# Canonical operand order (the printer emits operands in this order).
OPERAND_ORDER = ("ch", "pc", "bank", "sel", "row", "col", "slot", "acc", "n", "src", "dst", "fn")
AF_FUNCTIONS = ("relu", "gelu", "silu")


@dataclass(frozen=True)
class OpSpec:
    name: str                 # mnemonic as written in listings
    kind: str                 # timing class used by the timing table (timing.py)
    required: tuple[str, ...]
    optional: tuple[str, ...]  # default 0, printed only when non-zero
    state: str                # bank-state rule: none | closed | open | pc_closed
    opens: bool = False       # leaves the touched banks open at `row`
    closes: bool = False      # leaves the touched banks closed
    all_bank: bool = False    # touches every bank of (ch, pc) selected by `sel`
    tokens: bool = False      # MACs the column against `n` buffered vectors (token_operands)
    doc: str = ""


def _op(name, kind, req, opt=(), state="none", **kw) -> OpSpec:
    return OpSpec(name, kind, tuple(req.split()), tuple(opt.split()) if opt else (), state, **kw)


OPS: dict[str, OpSpec] = {s.name: s for s in [
    _op("ACT", "ACT", "ch bank row", state="closed", opens=True,
        doc="open `row` in one bank"),
    _op("ACT.ab", "ACTab", "ch row", "pc sel", state="closed", opens=True, all_bank=True,
        doc="open `row` in every bank of (ch, pc) with bank % banks_per_pu == sel"),
    _op("PRE", "PRE", "ch bank", closes=True, doc="close one bank (no-op if closed)"),
    _op("PRE.ab", "PREab", "ch", "pc sel", closes=True, all_bank=True,
        doc="close the `sel` bank set of (ch, pc)"),
    _op("PREA", "PREA", "ch", "pc", closes=True, all_bank=True,
        doc="close every bank of (ch, pc)"),
    _op("REF", "REF", "ch", "pc", state="pc_closed", all_bank=True,
        doc="all-bank refresh of (ch, pc); every bank must be closed"),
    _op("RD", "RD", "ch bank row col dst", state="open",
        doc="read one burst to host output `dst`"),
    _op("WR", "WR", "ch bank row col src", state="open",
        doc="write host input burst `src` into one column"),
    _op("WRGB", "WRGB", "ch slot src", "pc",
        doc="write host input burst `src` into global-buffer slot `slot` of (ch, pc)"),
    _op("MAC", "MAC", "ch bank row col slot acc", state="open",
        doc="one bank's PU: acc[acc] += bank[row, col] * GB[slot]"),
    _op("MAC.ab", "MACab", "ch row col slot acc", "pc sel", state="open", all_bank=True,
        doc="every PU of (ch, pc) on its `sel` bank: acc[acc] += bank[row, col] * GB[slot]"),
    _op("MACN.ab", "MACab", "ch row col slot acc n", "pc sel", state="open", all_bank=True,
        tokens=True,
        doc="every PU of (ch, pc) on its `sel` bank, for tokens i < n: "
            "acc[acc + i*acc_regs] += bank[row, col] * GB[slot + i*gb_slots]"),
    _op("RDMAC", "RDMAC", "ch acc dst", "pc",
        doc="read register `acc` of every PU of (ch, pc) to host output `dst`, then clear it"),
    _op("AF", "AF", "ch acc fn", "pc", doc="acc[acc] = fn(acc[acc]) in every PU of (ch, pc)"),
    _op("EWMUL", "EWMUL", "ch acc slot", "pc",
        doc="acc[acc] *= GB[slot...] element-wise over the PUs' flattened registers"),
    _op("EWADD", "EWADD", "ch acc slot", "pc",
        doc="acc[acc] += GB[slot...] element-wise over the PUs' flattened registers"),
    _op("SYNC", "SYNC", "", doc="barrier: every channel waits until all issued work is done"),
]}

# What each operand is checked against, and how the range error names the limit.
RANGE_LIMITS = {
    "ch": (lambda p: p.channels, "channels"),
    "pc": (lambda p: p.pseudo_channels, "pseudo-channels per channel"),
    "bank": (lambda p: p.banks_per_channel, "banks per channel"),
    "sel": (lambda p: p.pu.banks_per_pu, "banks per PU"),
    "row": (lambda p: p.rows, "rows per bank"),
    "col": (lambda p: p.columns, "columns per row"),
    "slot": (lambda p: p.gb_slots_total, "global-buffer slots per pseudo-channel"),
    "acc": (lambda p: p.acc_total, "accumulator registers per PU"),
    "n": (lambda p: p.token_slots + 1, "tokens per row visit + 1 (buffered vectors and"
          " accumulator sets)"),
    "src": (lambda p: 1 << 40, "host input bursts"),
    "dst": (lambda p: 1 << 40, "host output slots"),
}


# A multi-token MAC's token i uses the operand plus i times this stride: its own input
# vector (one buffer of gb_slots slots each) and its own accumulator set.
TOKEN_STRIDE = {"slot": lambda p: p.gb_slots, "acc": lambda p: p.pu.acc_regs}


def token_operands(pim, name: str, value: int, n: int) -> tuple[int, ...]:
    """The `slot` or `acc` values tokens 0..n-1 of a MACN.ab use."""
    step = TOKEN_STRIDE[name](pim)
    return tuple(value + i * step for i in range(n))


def token_groups(pim, n: int) -> int:
    """PU clocks a MAC of n tokens takes: mac_lanes tokens per clock."""
    return -(-n // pim.pu.mac_lanes)


def ew_slots(pim) -> int:
    """GB slots an EWMUL/EWADD reads: one element per accumulator lane of every PU."""
    return -(-pim.pus_per_pc * pim.acc_lanes // pim.pu.lanes)


def touched_banks(pim, spec: OpSpec, pc: int, bank: int | None, sel: int) -> tuple[int, ...]:
    """Channel-flat bank indices a command acts on (all-bank commands: the `sel` set)."""
    if not spec.all_bank:
        return (bank,) if bank is not None else ()
    base = pc * pim.banks_per_pc
    step = 1 if spec.kind in ("PREA", "REF") else pim.pu.banks_per_pu
    first = 0 if spec.kind in ("PREA", "REF") else sel
    return tuple(base + b for b in range(first, pim.banks_per_pc, step))


def pc_of_bank(pim, bank: int) -> int:
    return bank // pim.banks_per_pc


def pu_of_bank(pim, bank: int) -> int:
    """Index of the PU (within its pseudo-channel) that serves `bank`."""
    return (bank % pim.banks_per_pc) // pim.pu.banks_per_pu
