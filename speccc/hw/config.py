"""Hardware descriptions: TOML presets -> frozen dataclasses, validated key by key.

A preset has four sections: [npu], [link], [pim] (with [pim.pu] and [pim.timing]) and
[energy]. The schema (speccc.hw.schema) is the single source of truth for what a file may contain:
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
from speccc.hw.schema import (DSE_KEYS, DSE_OPTIONAL_KEYS, PU_KEYS, RULES, SECTIONS,
                               TOP_KEYS, _check, _fields, _section)


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
    background_mw_per_channel: float = 0.0   # schema DEFAULTS: files without it charge none


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


def _build(raw: dict, label: str, source: str) -> HwConfig:
    top = _fields(raw, TOP_KEYS, label, None, sub=("npu", "link", "pim", "energy", "dse"))
    dse = {}
    if "dse" in raw:
        if not isinstance(raw["dse"], dict):
            raise SpecccError(f"{label}: [dse]: expected a table")
        dse = _fields(raw["dse"], DSE_KEYS, label, "dse",
                      sub=tuple(k for k, _, _ in DSE_OPTIONAL_KEYS))
        dse |= {k: _check(raw["dse"][k], kind, f"{label}: [dse] {k}")
                for k, kind, _ in DSE_OPTIONAL_KEYS if k in raw["dse"]}
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
