"""Systems of several devices: xPUs (a GPU, or the NPU of a device preset) with their own
memory, tensor parallelism across identical xPUs, and PIM devices behind a link.

A *device preset* (speccc/hw/presets/*.toml: [npu], [link], [pim], [energy]) is a system of
one NPU sharing the DRAM of one PIM device; its `system` is `device_system(name)`. A
*system file* (speccc/hw/systems/*.toml, or any .toml with a [system] table) says

    [system]
    xpu = "gpu"              # the compute device class: "gpu" ([gpu] below) or "npu"
    xpus = 1                 # identical xPUs, tensor parallel (Megatron-style, see docs)
    pim = "hbm3-pim"         # a device preset: one PIM device (stack); "none": no PIM
    pim_devices = 5          # how many of them (0 with pim = "none")
    [system.xpu_link]        # xPU <-> xPU (the tensor-parallel all-reduce): NVLink
    [system.pim_link]        # xPU <-> PIM devices (activations to and from PIM ops)
    [gpu]                    # with xpu = "gpu": peak, bandwidth, capacity, efficiencies
    [link]                   # the host link, as in device presets
    [system.knobs]           # optional: keys of the device preset changed for this system
    "pim.pu.lanes" = 8       #   (section.key, as `speccc dse`'s [space.knobs]; see below)

N PIM devices are seen as one PIM device of N x its channels (channels are independent,
every per-channel figure stays), with the device preset's [pim] timing and [energy]. With
xpu = "npu" the NPU is the device preset's (its xpus must be 1: tensor parallelism is
modelled for GPUs only). [system.knobs] edits the device preset before it is used: pim.*
and energy.* keys (the PIM stacks' PU, timing, energy) and, with xpu = "npu", npu.* keys;
npu.* on a GPU system and link.* (the system's own [link] is the host link) are rejected.
`speccc dse --hw SYSTEM` writes the space's knobs there. Loaded by `load_hw(name, system=True)`; without `system=True`
load_hw refuses system files, so every compile/run path keeps its NPU and PIM.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from speccc.errors import SpecccError

GPU_KEYS = [
    ("peak_tflops", "float", "dense FP16 tensor peak, TFLOP/s"),
    ("mem_bandwidth_gbs", "float", "device memory bandwidth, GB/s"),
    ("mem_capacity_gib", "float", "device memory, GiB"),
    ("compute_efficiency", "float", "achievable fraction of peak_tflops"),
    ("memory_efficiency", "float", "achievable fraction of mem_bandwidth_gbs"),
    ("kernel_launch_ns", "float", "fixed time per kernel (launch + tail)"),
    ("mem_pj_per_bit", "float", "device-memory access energy"),
    ("flop_pj", "float", "energy per FP16 FLOP"),
    ("static_power_w", "float", "static (idle, powered) draw per GPU, W, charged over "
                                "the run's wall time"),
]
SYSTEM_KEYS = [
    ("xpu", ("gpu", "npu"), "compute device class"),
    ("xpus", "int", "identical xPUs (tensor-parallel degree)"),
    ("pim", "str", "device preset of one PIM device, or \"none\""),
    ("pim_devices", "int0", "PIM devices (stacks) of that preset"),
]
SYSTEM_RANGES = {"xpus": (1, 64), "pim_devices": (0, 64), "peak_tflops": (1e-3, 1e5),
                 "mem_bandwidth_gbs": (1e-3, 1e6), "mem_capacity_gib": (1e-3, 1e5),
                 "compute_efficiency": (1e-3, 1.0), "memory_efficiency": (1e-3, 1.0),
                 "kernel_launch_ns": (1e-3, 1e9), "mem_pj_per_bit": (1e-6, 1e4),
                 "flop_pj": (1e-6, 1e4)}


@dataclass(frozen=True)
class GpuConfig:
    peak_tflops: float
    mem_bandwidth_gbs: float
    mem_capacity_gib: float
    compute_efficiency: float
    memory_efficiency: float
    kernel_launch_ns: float
    mem_pj_per_bit: float
    flop_pj: float
    static_power_w: float

    @property
    def capacity_bytes(self) -> float:
        return self.mem_capacity_gib * 2**30


@dataclass(frozen=True)
class SystemConfig:
    xpu: str = "npu"
    xpus: int = 1
    pim: str = ""
    pim_devices: int = 1
    xpu_link: object = None     # LinkConfig: the all-reduce between xPUs
    pim_link: object = None     # LinkConfig, or None: PIM is the xPU's own DRAM

    @property
    def has_pim(self) -> bool:
        return self.pim_devices > 0


def device_system(name: str) -> SystemConfig:
    """A device preset as a system: its NPU on the DRAM of its one PIM device."""
    return SystemConfig(xpu="npu", xpus=1, pim=name, pim_devices=1)


def build_system(raw: dict, label: str, source: str):
    """A system file -> HwConfig (npu/pim/energy from the named device preset, or None)."""
    from speccc.hw.config import HwConfig, LinkConfig, load_hw
    from speccc.hw.schema import LINK_KEYS, TOP_KEYS, _fields, _section
    top = _fields(raw, TOP_KEYS, label, None, sub=("system", "gpu", "link"))
    table = _section(raw, "system", label)
    vals = _fields(table, SYSTEM_KEYS, label, "system",
                   sub=("xpu_link", "pim_link", "knobs"))
    _ranges(vals, label, "system")
    links = {}
    for which in ("xpu_link", "pim_link"):
        if which in table:
            links[which] = LinkConfig(**_fields(_section(raw, f"system.{which}", label),
                                                LINK_KEYS, label, f"system.{which}"))
    no_pim = vals["pim"] == "none"
    if no_pim != (vals["pim_devices"] == 0):
        raise SpecccError(f"{label}: [system] pim_devices: {vals['pim_devices']} with pim = "
                          f"{vals['pim']!r}: a system without PIM says pim = \"none\" and "
                          "pim_devices = 0")
    if vals["xpus"] > 1 and "xpu_link" not in links:
        raise SpecccError(f"{label}: [system.xpu_link]: missing section (xpus = "
                          f"{vals['xpus']} need a link for the tensor-parallel all-reduce)")
    base = None
    if not no_pim:
        if vals["pim"] == top["name"]:
            raise SpecccError(f"{label}: [system] pim: names the system itself")
        knobs = _knobs(table, vals, label)
        try:
            base = device_with_knobs(vals["pim"], knobs, label)
        except SpecccError as err:
            raise SpecccError(f"{label}: [system] pim: {err}") from None
        if vals["pim_devices"] > 1 and base.pim.groups:
            raise SpecccError(f"{label}: [system] pim_devices: {base.name} has channel "
                              "groups; several devices of it are not modelled")
    elif table.get("knobs"):
        _knobs(table, vals, label)        # says why: no device to apply them to
    gpu = None
    if vals["xpu"] == "gpu":
        gv = _fields(_section(raw, "gpu", label), GPU_KEYS, label, "gpu")
        _ranges(gv, label, "gpu")
        gpu = GpuConfig(**gv)
        if base is not None and "pim_link" not in links:
            raise SpecccError(f"{label}: [system.pim_link]: missing section (a GPU reaches "
                              "its PIM devices over a link)")
    else:
        if "gpu" in raw:
            raise SpecccError(f"{label}: [gpu]: xpu = \"npu\" has no GPU (remove [gpu] or "
                              "set xpu = \"gpu\")")
        if base is None:
            raise SpecccError(f"{label}: [system] pim: xpu = \"npu\" takes its NPU from a "
                              "device preset; name one")
        if vals["xpus"] != 1:
            raise SpecccError(f"{label}: [system] xpus: {vals['xpus']}: tensor parallelism "
                              "is modelled for xpu = \"gpu\" only")
    system = SystemConfig(**vals, **links)
    pim = energy = npu = None
    if base is not None:
        pim = dataclasses.replace(base.pim, channels=base.pim.channels * vals["pim_devices"])
        energy = base.energy
        npu = base.npu if vals["xpu"] == "npu" else None
    return HwConfig(name=top["name"], description=top["description"], npu=npu,
                    link=LinkConfig(**_fields(_section(raw, "link", label), LINK_KEYS,
                                              label, "link")),
                    pim=pim, energy=energy, source=source, gpu=gpu, system=system)


def _knobs(table: dict, vals: dict, label: str) -> dict:
    """[system.knobs], checked: each a hardware key (section.key) that applies to this
    system's devices."""
    from speccc.hw.schema import SECTIONS
    knobs = table.get("knobs", {})
    if not isinstance(knobs, dict):
        raise SpecccError(f"{label}: [system.knobs]: expected a table")
    for key, value in knobs.items():
        where = f"{label}: [system.knobs] {key}"
        section, _, name = key.rpartition(".")
        if section not in SECTIONS or name not in {k for k, _, _ in SECTIONS[section]}:
            raise SpecccError(f"{where}: not a hardware key (section.key, e.g. "
                              "pim.pu.lanes; see `speccc hw show PRESET`)")
        if isinstance(value, (dict, list)):
            raise SpecccError(f"{where}: expected a number or a string")
        if vals["pim"] == "none":
            raise SpecccError(f"{where}: pim = \"none\": no device preset to apply it to "
                              "(the GPU's figures are its [gpu] table)")
        if section == "link":
            raise SpecccError(f"{where}: a system's host link is its own [link] table; "
                              "set it there")
        if section == "npu" and vals["xpu"] != "npu":
            raise SpecccError(f"{where}: xpu = \"{vals['xpu']}\" has no NPU (npu.* keys "
                              f"apply to an NPU; the GPU's figures are its [gpu] table)")
    return knobs


def device_with_knobs(name: str, knobs: dict, label: str):
    """Device preset (or file) `name` with `knobs` ({"pim.pu.lanes": 8}) applied."""
    from speccc.hw.config import load_hw
    if not knobs:
        return load_hw(name)
    import tomllib

    from speccc.hw.config import _build, _read
    text, plabel = _read(name)
    raw = tomllib.loads(text)
    for key, value in knobs.items():
        *path, leaf = key.split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _build(raw, f"{plabel} with [system.knobs]", source=name)


def _ranges(vals: dict, label: str, section: str) -> None:
    for key, value in vals.items():
        if key in SYSTEM_RANGES:
            lo, hi = SYSTEM_RANGES[key]
            if not lo <= value <= hi:
                raise SpecccError(f"{label}: [{section}] {key}: {value!r} is outside the "
                                  f"plausible range [{lo:g}, {hi:g}]")


def with_tp(hw, xpus: int):
    """`hw` with `xpus` tensor-parallel xPUs (speccc baseline --tp)."""
    if xpus == hw.system.xpus:
        return hw
    if hw.system.xpu != "gpu":
        raise SpecccError(f"--tp {xpus}: {hw.name} has an NPU; tensor parallelism is "
                          "modelled for GPU systems")
    if xpus > 1 and hw.system.xpu_link is None:
        raise SpecccError(f"--tp {xpus}: {hw.name} has no [system.xpu_link] for the "
                          "all-reduce")
    lo, hi = SYSTEM_RANGES["xpus"]
    if not lo <= xpus <= hi:
        raise SpecccError(f"--tp {xpus}: outside [{lo}, {hi}]")
    return dataclasses.replace(hw, name=f"{hw.name}-tp{xpus}",
                               system=dataclasses.replace(hw.system, xpus=xpus))
