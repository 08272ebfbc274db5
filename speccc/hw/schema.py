"""The preset schema: every key a hardware TOML may hold (kind, doc), the plausible range
of each, the physical relations between them, and the checks that read a table against
that schema. speccc.hw.config builds the dataclasses from what these checks return;
speccc.hw.system reads system files with the same checks.

Kinds: "int" positive int, "int0" non-negative int, "float" positive number, "float0"
non-negative number, "str", or a tuple of allowed strings; every error names the file and
the key. A key in DEFAULTS may be left out (files written before it existed still load).
"""
from __future__ import annotations

import math
from typing import Any

from speccc.errors import SpecccError

PIM_KINDS = ("hbm-pim", "aim-gddr6", "hbm3-pim")
DTYPES = ("fp16", "bf16", "fp32")


# ---------------------------------------------------------------- schema ------
# (key, kind, doc). kind: "int" positive int, "int0" non-negative int,
# "float" positive number, "float0" non-negative number, "str", or a tuple of allowed strings.
NPU_KEYS = [
    ("pes", "int", "systolic arrays"),
    ("array_rows", "int", "PE rows per array"),
    ("array_cols", "int", "PE columns per array"),
    ("clock_mhz", "float", "array clock"),
    ("sram_bytes", "int", "on-chip SRAM"),
    ("ext_bandwidth_gbs", "float", "NPU share of DRAM bandwidth, GB/s"),
    ("vector_alus", "int", "vector-unit ALUs (elementwise ops per clock)"),
]
LINK_KEYS = [
    ("bandwidth_gbs", "float", "host link bandwidth per direction, GB/s"),
    ("latency_ns", "float", "one-way latency"),
    ("energy_pj_per_bit", "float", "transfer energy"),
]
PIM_KEYS = [
    ("kind", PIM_KINDS, "device family"),
    ("channels", "int", "independent channels"),
    ("pseudo_channels", "int", "pseudo-channels (ranks) per channel"),
    ("bank_groups", "int", "bank groups per pseudo-channel"),
    ("banks_per_group", "int", "banks per bank group"),
    ("rows", "int", "rows per bank"),
    ("columns", "int", "column bursts per row"),
    ("burst_bytes", "int", "bytes per column burst"),
]
PU_KEYS = [
    ("lanes", "int", "SIMD lanes per PU (elements per burst)"),
    ("banks_per_pu", "int", "banks sharing one PU (all-bank ops pick one with sel)"),
    ("clock_mhz", "float", "PU clock: with mac_lanes it sets the PU's MAC rate"),
    ("mac_lanes", "int", "burst-wide MACs per PU clock (input vectors one column meets per clock)"),
    ("mul_dtype", DTYPES, "multiplier input format"),
    ("acc_dtype", DTYPES, "accumulator format"),
    ("out_dtype", DTYPES, "format RDMAC returns"),
    ("reduce", ("tree", "lanes"), "tree: lanes summed per MAC; lanes: kept apart"),
    ("acc_regs", "int", "accumulator registers per PU"),
    ("gb_bytes", "int", "global buffer per pseudo-channel, per input vector"),
    ("vector_slots", "int", "input vectors the global buffer holds (gb_bytes each)"),
    ("acc_sets", "int", "accumulator sets per PU (acc_regs each; one per buffered token)"),
]
TIMING_KEYS = [
    ("tCK_ns", "float", "command clock period"),
    ("CL", "int", "read latency"), ("WL", "int", "write latency"),
    ("tBL", "int", "data-bus cycles per burst"),
    ("tRCD", "int", "ACT to RD"), ("tRCDWR", "int", "ACT to WR"),
    ("tRCD_MAC", "int", "ACT to MAC"),
    ("tRP", "int", "PRE to ACT"), ("tRAS", "int", "ACT to PRE"), ("tRC", "int", "ACT to ACT"),
    ("tCCD_S", "int", "column to column, other bank group"),
    ("tCCD_L", "int", "column to column, same bank group"),
    ("tCCD_AB", "int", "all-bank MAC to all-bank MAC"),
    ("tRRD_S", "int", "ACT to ACT, other bank group"),
    ("tRRD_L", "int", "ACT to ACT, same bank group"),
    ("tFAW", "int", "four-activation window"),
    ("tWR", "int", "write recovery"), ("tRTP", "int", "read to PRE"),
    ("tWTR_S", "int", "write to read, other bank group"),
    ("tWTR_L", "int", "write to read, same bank group"),
    ("tRFC", "int", "refresh cycle"), ("tREFI", "int", "refresh interval"),
    ("tMACL", "int", "MAC issue to accumulator updated"),
    ("tPUOP", "int", "AF/EWMUL/EWADD latency"),
    ("tCMD", "int", "command-bus slot"),
]
ENERGY_KEYS = [
    ("act_pj", "float", "one bank activation + precharge"),
    ("read_internal_pj_per_bit", "float", "bank -> PU"),
    ("external_pj_per_bit", "float", "bank/GB <-> pins (RD, WR, WRGB, RDMAC)"),
    ("mac_pj", "float", "one lane multiply-accumulate"),
    ("pu_op_pj", "float", "one element of AF/EWMUL/EWADD"),
    ("ref_pj", "float", "one REF of one pseudo-channel"),
    ("npu_mac_pj", "float", "one systolic-array multiply-accumulate"),
    ("npu_sram_pj_per_bit", "float", "NPU on-chip SRAM access (read or write)"),
    ("npu_vector_op_pj", "float", "one NPU vector-unit operation on one element"),
    ("background_mw_per_channel", "float0",
     "PIM DRAM background (standby) power of one channel, mW: charged on every channel "
     "over a run's wall time, idle or busy (optional, default 0)"),
]
# Optional keys and the value a file that omits them gets: 0 charges nothing, so a file
# written before the key existed prices runs as it did then.
DEFAULTS = {"background_mw_per_channel": 0.0}
TOP_KEYS = [("name", "str", "preset name"), ("description", "str", "one line")]
SECTIONS = {"npu": NPU_KEYS, "link": LINK_KEYS, "pim": PIM_KEYS, "pim.pu": PU_KEYS,
            "pim.timing": TIMING_KEYS, "energy": ENERGY_KEYS}
# Optional [dse]: the point `speccc dse` chose (its best.toml). Not hardware: load_hw
# keeps it in HwConfig.dse and `speccc run --hw FILE` takes it as defaults.
DSE_KEYS = [("schedule", ("none", "serial", "overlap", "pipeinfer"), "speculative schedule"),
            ("gamma", "int", "tokens drafted per verify"),
            ("mapping", ("auto", "mincut", "specpim", "attacc", "all-npu", "all-pim"),
             "op mapping (partition pass) or auto placement"),
            ("draft_channels", "int0", "PIM channels of the draft (0: shared/auto)"),
            ("batch", "int", "requests decoded together"),
            ("partition_p", "int", "context length P the mapping was chosen at")]
# Optional in [dse] (best.toml files written before they existed lack them).
DSE_OPTIONAL_KEYS = [
    ("channels", "str", "PIM channels each model's mapping was priced on "
                        "(draft=A-B,target=C-D, inclusive)"),
    ("cost_model", ("targets", "targets-fast", "roofline"),
     "cost model the mapping was priced with")]


# Plausible ranges (lo, hi) by key, else by kind. Beyond them no real part exists and the
# emulator's work grows without bound (columns = 1e9, pseudo_channels = 1e6 and CL = 1e9
# all hung; tCK_ns = 1e-300 passed): about 10x past today's HBM3/GDDR6/DDR5 parts.
RANGES = {
    "int": (1, 1 << 20), "float": (1e-6, 1e7), "float0": (0.0, 1e7),
    "background_mw_per_channel": (0.0, 1e4),   # 10 W per channel: ~100x a DRAM channel's standby
    "channels": (1, 1024), "pseudo_channels": (1, 16), "bank_groups": (1, 64),
    "banks_per_group": (1, 64), "rows": (1, 1 << 20), "columns": (1, 4096),
    "burst_bytes": (1, 1024), "lanes": (1, 1024), "banks_per_pu": (1, 64),
    "acc_regs": (1, 4096), "gb_bytes": (1, 1 << 20),
    "pes": (1, 4096), "array_rows": (1, 4096), "array_cols": (1, 4096),
    "sram_bytes": (1, 1 << 36), "vector_alus": (1, 1 << 20),
    "clock_mhz": (1.0, 1e5), "bandwidth_gbs": (1e-3, 1e6), "ext_bandwidth_gbs": (1e-3, 1e6),
    "latency_ns": (1e-3, 1e9), "tCK_ns": (0.05, 100.0),
    **{k: (1, 4096) for k, kind, _ in TIMING_KEYS if kind == "int"},
    "tRFC": (1, 1 << 14), "tREFI": (1, 1 << 18),
}

# Physical relations between keys, walked by _consistency:
# (key to fix, rule, holds(pim, pu, timing), why). JEDEC defines the DRAM ones in ns;
# converting each to cycles rounds separately, hence the one-cycle slack on tRC
# (ATTACC's HBM3 table has tRC 63 for tRAS + tRP = 64).
RULES = [
    ("[pim.pu] banks_per_pu", "banks_per_pc % banks_per_pu == 0",
     lambda p, pu, t: p.banks_per_pc % pu.banks_per_pu == 0,
     "PUs are shared by equal groups of a pseudo-channel's banks"),
    ("[pim.pu] lanes", "burst_bytes == 2 * lanes",
     lambda p, pu, t: p.burst_bytes == pu.lanes * 2,
     "one burst feeds every lane a 16-bit word"),
    ("[pim.pu] gb_bytes", "gb_bytes % burst_bytes == 0",
     lambda p, pu, t: pu.gb_bytes % p.burst_bytes == 0,
     "the global buffer is written a burst at a time"),
    ("[pim.timing] WL", "CL + tBL + 2 > WL", lambda p, pu, t: t.CL + t.tBL + 2 > t.WL,
     "read-to-write turnaround must be positive"),
    ("[pim.timing] tRC", "tRC >= tRAS + tRP - 1", lambda p, pu, t: t.tRC >= t.tRAS + t.tRP - 1,
     "a row cycle is the row kept open plus its precharge"),
    ("[pim.timing] tRAS", "tRAS >= tRCD", lambda p, pu, t: t.tRAS >= t.tRCD,
     "a row stays open at least until a column can be read"),
    ("[pim.timing] tREFI", "tREFI >= 4 * tRFC", lambda p, pu, t: t.tREFI >= 4 * t.tRFC,
     "refresh would take over a quarter of the time (real parts: 2-10%)"),
    ("[pim.timing] tFAW", "tFAW > 3 * tRRD_S", lambda p, pu, t: t.tFAW > 3 * t.tRRD_S,
     "four ACTs already span 3 tRRD_S, so a shorter window never binds"),
    ("[pim.timing] tCCD_L", "tCCD_L >= tCCD_S", lambda p, pu, t: t.tCCD_L >= t.tCCD_S,
     "the same bank group is never faster than another"),
    ("[pim.timing] tRRD_L", "tRRD_L >= tRRD_S", lambda p, pu, t: t.tRRD_L >= t.tRRD_S,
     "the same bank group is never faster than another"),
    ("[pim.timing] tMACL", "tMACL >= CL", lambda p, pu, t: t.tMACL >= t.CL,
     "the accumulator updates after the bank's data arrive"),
]


def _section(raw: dict, dotted: str, label: str) -> dict:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SpecccError(f"{label}: [{dotted}]: missing section")
        node = node[part]
    if not isinstance(node, dict):
        raise SpecccError(f"{label}: [{dotted}]: expected a table")
    return node


def _check(value: Any, kind: Any, where: str) -> Any:
    def bad(expected: str) -> SpecccError:
        return SpecccError(f"{where}: expected {expected}, got {value!r}")

    if kind in ("int", "int0"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a positive integer" if kind == "int" else "a non-negative integer")
        if value < (1 if kind == "int" else 0):
            raise bad("a positive integer" if kind == "int" else "a non-negative integer")
        return value
    if kind in ("float", "float0"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (value > 0 or kind == "float0" and value == 0) \
                or not math.isfinite(value):
            raise bad("a positive number" if kind == "float" else "a non-negative number")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if value not in kind:
        raise bad("one of " + ", ".join(kind))
    return value


def _fields(table: dict, keys: list, label: str, dotted: str | None,
            sub: tuple[str, ...] = ()) -> dict:
    prefix = f"{label}: [{dotted}] " if dotted else f"{label}: "
    known = {k for k, _, _ in keys} | set(sub)
    for key in table:
        if key not in known:
            raise SpecccError(f"{prefix}{key}: unknown key")
    out = {}
    for key, kind, _doc in keys:
        if key not in table and key in DEFAULTS:
            out[key] = DEFAULTS[key]
            continue
        if key not in table:
            raise SpecccError(f"{prefix}{key}: missing")
        out[key] = _check(table[key], kind, f"{prefix}{key}")
        if kind in RANGES:
            lo, hi = RANGES.get(key, RANGES[kind])
            if not lo <= out[key] <= hi:
                raise SpecccError(f"{prefix}{key}: {table[key]!r} is outside the plausible "
                                  f"range [{lo:g}, {hi:g}]")
    return out
