"""Hardware descriptions: TOML presets -> frozen dataclasses, validated key by key.

A preset has four sections: [npu], [link], [pim] (with [pim.pu] and [pim.timing]) and
[energy]. The schema below is the single source of truth for what a file may contain:
every key is required, unknown keys are rejected, and every error names the file and
the key (`hbm-pim.toml: [pim.timing] tRCD: expected a positive integer, got -3`).
Timings are integers in command-clock cycles (tCK); everything else carries its unit
in its name.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from speccc.errors import SpecccError

PIM_KINDS = ("hbm-pim", "aim-gddr6", "hbm3-pim")
DTYPES = ("fp16", "bf16", "fp32")


# ---------------------------------------------------------------- schema ------
# (key, kind, doc). kind: "int" positive int, "int0" non-negative int,
# "float" positive number, "str", or a tuple of allowed strings.
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
]
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


# Plausible ranges (lo, hi) by key, else by kind. Beyond them no real part exists and the
# emulator's work grows without bound (columns = 1e9, pseudo_channels = 1e6 and CL = 1e9
# all hung; tCK_ns = 1e-300 passed): about 10x past today's HBM3/GDDR6/DDR5 parts.
RANGES = {
    "int": (1, 1 << 20), "float": (1e-6, 1e7),
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


# ---------------------------------------------------------------- classes -----
@dataclass(frozen=True)
class NpuConfig:
    pes: int
    array_rows: int
    array_cols: int
    clock_mhz: float
    sram_bytes: int
    ext_bandwidth_gbs: float
    vector_alus: int


@dataclass(frozen=True)
class LinkConfig:
    bandwidth_gbs: float
    latency_ns: float
    energy_pj_per_bit: float


@dataclass(frozen=True)
class PuConfig:
    lanes: int
    banks_per_pu: int
    clock_mhz: float
    mul_dtype: str
    acc_dtype: str
    out_dtype: str
    reduce: str
    acc_regs: int
    gb_bytes: int
    mac_lanes: int = 1
    vector_slots: int = 1
    acc_sets: int = 1


@dataclass(frozen=True)
class PimTiming:
    tCK_ns: float
    CL: int
    WL: int
    tBL: int
    tRCD: int
    tRCDWR: int
    tRCD_MAC: int
    tRP: int
    tRAS: int
    tRC: int
    tCCD_S: int
    tCCD_L: int
    tCCD_AB: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tWR: int
    tRTP: int
    tWTR_S: int
    tWTR_L: int
    tRFC: int
    tREFI: int
    tMACL: int
    tPUOP: int
    tCMD: int


@dataclass(frozen=True)
class ChannelGroup:
    """Channels [lo, hi) of a preset with their own PU configuration (SpecPIM's
    per-model architecture space: e.g. a small-PU group for the draft, a multi-lane one
    for the target). From `[[pim.groups]]`: name, channels (count, groups in order), and
    any [pim.pu] key to override."""
    name: str
    lo: int
    hi: int
    pu: PuConfig


@dataclass(frozen=True)
class PimConfig:
    kind: str
    channels: int
    pseudo_channels: int
    bank_groups: int
    banks_per_group: int
    rows: int
    columns: int
    burst_bytes: int
    pu: PuConfig
    timing: PimTiming
    groups: tuple[ChannelGroup, ...] = ()

    # ---- organisation ----
    @property
    def banks_per_pc(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def banks_per_channel(self) -> int:
        return self.pseudo_channels * self.banks_per_pc

    @property
    def pus_per_pc(self) -> int:
        return self.banks_per_pc // self.pu.banks_per_pu

    @property
    def gb_slots(self) -> int:
        return self.pu.gb_bytes // self.burst_bytes

    @property
    def gb_slots_total(self) -> int:
        """Slots of the whole buffer: vector v's tile is slots v*gb_slots .. +gb_slots-1."""
        return self.gb_slots * self.pu.vector_slots

    @property
    def acc_total(self) -> int:
        """Accumulator registers per PU over all sets: set v is v*acc_regs .. +acc_regs-1."""
        return self.pu.acc_regs * self.pu.acc_sets

    @property
    def token_slots(self) -> int:
        """Tokens one row visit can serve: an input vector and an accumulator set each."""
        return min(self.pu.vector_slots, self.pu.acc_sets)

    @property
    def pu_cycles(self) -> float:
        """Command-clock cycles per PU clock."""
        return 1e3 / (self.pu.clock_mhz * self.timing.tCK_ns)

    @property
    def tPU(self) -> int:
        """Whole command cycles one PU clock (one group of mac_lanes tokens) takes; a
        0.1% tolerance absorbs clocks quoted to a few digits (216.7 MHz = 6 x 0.769 ns)."""
        return max(1, math.ceil(self.pu_cycles - 1e-3 * self.pu_cycles))

    @property
    def acc_lanes(self) -> int:
        return 1 if self.pu.reduce == "tree" else self.pu.lanes

    @property
    def row_bytes(self) -> int:
        return self.columns * self.burst_bytes

    @property
    def rdmac_bursts(self) -> int:
        """Bursts one RDMAC moves: every PU's register in out_dtype."""
        nbytes = self.pus_per_pc * self.acc_lanes * dtype_bytes(self.pu.out_dtype)
        return max(1, math.ceil(nbytes / self.burst_bytes))


@dataclass(frozen=True)
class EnergyConfig:
    act_pj: float
    read_internal_pj_per_bit: float
    external_pj_per_bit: float
    mac_pj: float
    pu_op_pj: float
    ref_pj: float
    npu_mac_pj: float
    npu_sram_pj_per_bit: float
    npu_vector_op_pj: float


@dataclass(frozen=True)
class HwConfig:
    """A device preset (npu, pim, energy all set), or a system (speccc.hw.system) whose
    npu / pim / energy are None when it has no such device; `load_hw` without
    `system=True` only returns the former."""
    name: str
    description: str
    npu: NpuConfig | None
    link: LinkConfig
    pim: PimConfig | None
    energy: EnergyConfig | None
    source: str = dataclasses.field(default="", compare=False)
    dse: dict = dataclasses.field(default_factory=dict, compare=False)  # [dse], optional
    gpu: Any = None         # speccc.hw.system.GpuConfig: the system's xPU is a GPU
    system: Any = None      # speccc.hw.system.SystemConfig (device presets: one NPU + PIM)

    def __post_init__(self):
        if self.system is None:
            from speccc.hw.system import device_system
            object.__setattr__(self, "system", device_system(self.name))

    @property
    def label(self) -> str:
        """How reports and errors name this hardware: the preset's name, or for a file
        the file and the name inside it (`my.toml (from aim-gddr6)`), so a copy of a
        preset is never reported as the preset."""
        if not self.source or self.source in (*preset_names(), *system_names()):
            return self.name
        return f"{Path(self.source).name} (from {self.name})"

    def derived(self) -> dict[str, float]:
        """Headline figures computed from the description (GB/s = bytes/ns)."""
        if self.pim is None:
            return self._xpu_derived()
        return {**self._pim_derived(), **self._xpu_derived()}

    def _xpu_derived(self) -> dict[str, float]:
        out = {}
        if self.npu is not None:
            out["npu_peak_macs_per_s"] = (self.npu.pes * self.npu.array_rows
                                          * self.npu.array_cols * self.npu.clock_mhz * 1e6)
        if self.gpu is not None:
            n = self.system.xpus
            out.update(gpu_peak_flops_per_s=self.gpu.peak_tflops * 1e12 * n,
                       gpu_bandwidth_gbs=self.gpu.mem_bandwidth_gbs * n,
                       gpu_capacity_bytes=self.gpu.capacity_bytes * n)
        return out

    def _pim_derived(self) -> dict[str, float]:
        p, t = self.pim, self.pim.timing
        pcs = p.channels * p.pseudo_channels
        ext_pc = p.burst_bytes / (t.tBL * t.tCK_ns)
        int_pc = p.pus_per_pc * p.burst_bytes / (t.tCCD_AB * t.tCK_ns)
        # the PUs' compute peak: lanes x mac_lanes multiply-accumulates per PU clock
        macs = pcs * p.pus_per_pc * p.pu.lanes * p.pu.mac_lanes * p.pu.clock_mhz * 1e6
        column_rate = 1e3 / (t.tCCD_AB * t.tCK_ns)                  # MHz
        return {
            "capacity_bytes": pcs * p.banks_per_pc * p.rows * p.row_bytes,
            "total_banks": pcs * p.banks_per_pc,
            "total_pus": pcs * p.pus_per_pc,
            "peak_internal_gbs": int_pc * pcs,
            "peak_internal_gbs_per_channel": int_pc * p.pseudo_channels,
            "peak_external_gbs": ext_pc * pcs,
            "peak_external_gbs_per_channel": ext_pc * p.pseudo_channels,
            "internal_over_external": int_pc / ext_pc,
            "peak_pim_macs_per_s": macs,
            # tokens a column access can serve before the PU, not the column, is the bound
            "tokens_per_column": p.pu.mac_lanes * p.pu.clock_mhz / column_rate,
            "token_slots": p.token_slots,
            "refresh_overhead": t.tRFC / t.tREFI,
        }

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d

    def group(self, name: str) -> ChannelGroup:
        for g in self.pim.groups:
            if g.name == name:
                return g
        have = ", ".join(g.name for g in self.pim.groups) or "none"
        raise SpecccError(f"{self.name} has no PIM channel group {name!r} (groups: {have})")

    def for_channels(self, channels) -> "HwConfig":
        """This preset as seen by work on `channels`: the PU configuration of the channel
        group holding them (addresses stay global). No groups, or no channels: self."""
        if not self.pim.groups or not channels:
            return self
        lo, hi = min(channels), max(channels) + 1
        for g in self.pim.groups:
            if g.lo <= lo and hi <= g.hi:
                if g.pu == self.pim.pu:
                    return self
                return dataclasses.replace(self, pim=dataclasses.replace(self.pim, pu=g.pu))
        return self     # work spanning groups is timed with the preset's [pim.pu]


def dtype_bytes(dtype: str) -> int:
    return 4 if dtype == "fp32" else 2


# ---------------------------------------------------------------- loading -----
def preset_names() -> list[str]:
    """Device presets (one NPU + one PIM device): what compile and run take."""
    return _names("presets")


def system_names() -> list[str]:
    """System presets (speccc.hw.system: GPUs, PIM stacks): what `speccc baseline` takes
    besides the device presets."""
    return _names("systems")


def _names(folder_name: str) -> list[str]:
    folder = resources.files("speccc.hw") / folder_name
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_hw(name_or_path: str | Path, system: bool = False) -> HwConfig:
    """Load a preset by name (`aim-gddr6`) or a TOML file by path. `system=True` also
    takes system presets and files (a [system] table: speccc.hw.system)."""
    from speccc.textio import check_nesting
    text, label = _read(str(name_or_path), system)
    check_nesting(text, label)  # tomllib recurses per nested array/table
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecccError(f"{label}: invalid TOML: {err}") from None
    if "system" in raw:
        if not system:
            raise SpecccError(f"{label}: a system description ([system] table) is for "
                              "`speccc baseline --system`; this command needs a device "
                              f"preset ({', '.join(preset_names())})")
        from speccc.hw.system import build_system
        return build_system(raw, label, source=str(name_or_path))
    return _build(raw, label, source=str(name_or_path))


def _read(name: str, system: bool = False) -> tuple[str, str]:
    if name in preset_names():
        res = resources.files("speccc.hw") / "presets" / f"{name}.toml"
        return res.read_text(encoding="utf-8"), f"{name}.toml"
    if name in system_names():
        if not system:
            raise SpecccError(f"{name} is a system preset (GPUs / PIM stacks) for `speccc "
                              "baseline --system`; this command needs a device preset "
                              f"({', '.join(preset_names())})")
        res = resources.files("speccc.hw") / "systems" / f"{name}.toml"
        return res.read_text(encoding="utf-8"), f"{name}.toml"
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise SpecccError(f"{name}: no such hardware description file")
        from speccc.textio import read_text
        return read_text(path, max_bytes=1 << 20), path.name
    systems = f"; systems: {', '.join(system_names())}" if system else ""
    raise SpecccError(f"unknown hardware preset {name!r} (presets: {', '.join(preset_names())}"
                      f"{systems}; or give a path to a .toml file)")


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
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or not math.isfinite(value):
            raise bad("a positive number")
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
        if key not in table:
            raise SpecccError(f"{prefix}{key}: missing")
        out[key] = _check(table[key], kind, f"{prefix}{key}")
        if kind in RANGES:
            lo, hi = RANGES.get(key, RANGES[kind])
            if not lo <= out[key] <= hi:
                raise SpecccError(f"{prefix}{key}: {table[key]!r} is outside the plausible "
                                  f"range [{lo:g}, {hi:g}]")
    return out


def _build(raw: dict, label: str, source: str) -> HwConfig:
    top = _fields(raw, TOP_KEYS, label, None, sub=("npu", "link", "pim", "energy", "dse"))
    dse = {}
    if "dse" in raw:
        if not isinstance(raw["dse"], dict):
            raise SpecccError(f"{label}: [dse]: expected a table")
        dse = _fields(raw["dse"], DSE_KEYS, label, "dse")
    tables = {d: _section(raw, d, label) for d in SECTIONS}
    vals = {d: _fields(tables[d], SECTIONS[d], label, d,
                       sub=("pu", "timing", "groups") if d == "pim" else ())
            for d in SECTIONS}
    pu = PuConfig(**vals["pim.pu"])
    timing = PimTiming(**vals["pim.timing"])
    groups = _groups(tables["pim"].get("groups", []), vals["pim"]["channels"], pu, label)
    pim = PimConfig(**vals["pim"], pu=pu, timing=timing, groups=groups)
    hw = HwConfig(name=top["name"], description=top["description"],
                  npu=NpuConfig(**vals["npu"]), link=LinkConfig(**vals["link"]),
                  pim=pim, energy=EnergyConfig(**vals["energy"]), source=source, dse=dse)
    _consistency(hw, label)
    return hw


def _groups(raw: Any, channels: int, pu: PuConfig, label: str) -> tuple[ChannelGroup, ...]:
    """[[pim.groups]]: name, channels (a count; groups take channels in order and must
    cover them all), optional [pim.pu] overrides."""
    if not raw:
        return ()
    if not isinstance(raw, list) or not all(isinstance(g, dict) for g in raw):
        raise SpecccError(f"{label}: [pim] groups: expected [[pim.groups]] tables")
    out, lo = [], 0
    pu_kinds = {k: kind for k, kind, _ in PU_KEYS}
    for i, g in enumerate(raw):
        where = f"{label}: [[pim.groups]] #{i + 1}"
        name = _check(g.get("name"), "str", f"{where} name")
        count = _check(g.get("channels"), "int", f"{where} channels")
        over = {}
        for key, value in g.items():
            if key in ("name", "channels"):
                continue
            if key not in pu_kinds:
                raise SpecccError(f"{where} {key}: unknown key (a group sets name, channels "
                                  "and [pim.pu] keys)")
            over[key] = _check(value, pu_kinds[key], f"{where} {key}")
        if name in {x.name for x in out}:
            raise SpecccError(f"{where} name: {name!r} defined twice")
        out.append(ChannelGroup(name, lo, lo + count, dataclasses.replace(pu, **over)))
        lo += count
    if lo != channels:
        raise SpecccError(f"{label}: [[pim.groups]] channels: the groups cover {lo} channels, "
                          f"the preset has {channels}")
    return tuple(out)


def _value(p: PimConfig, name: str):
    return next(getattr(o, name) for o in (p.timing, p.pu, p) if hasattr(o, name))


def _consistency(hw: HwConfig, label: str) -> None:
    """Walk RULES; the first broken one is an error naming the key, the rule and why."""
    p = hw.pim
    for key, rule, holds, why in RULES:
        if not holds(p, p.pu, p.timing):
            values = ", ".join(f"{n}={_value(p, n)}"
                               for n in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", rule)))
            raise SpecccError(f"{label}: {key}: breaks `{rule}` ({values}): {why}")
    for g in p.groups:
        if (g.pu.lanes, g.pu.banks_per_pu, g.pu.reduce) != (p.pu.lanes, p.pu.banks_per_pu,
                                                            p.pu.reduce):
            raise SpecccError(f"{label}: [[pim.groups]] {g.name}: lanes, banks_per_pu and "
                              "reduce are the die's organisation: a group keeps them")
