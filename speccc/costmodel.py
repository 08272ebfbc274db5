"""Per-op latency and energy on a device, for a given binding of the symbolic dims.

This is the contract between the hardware models and their users (the `cost` and
`partition` passes, `speccc run`'s discrete-event runtime, reports):

    model = CostModel(load_hw("hbm-pim"))
    c = model.op_cost(op, "pim", {"T": 1, "P": 128})   # -> OpCost
    for op, device, c in model.graph_costs(graph, {"T": 1, "P": 128}): ...

Devices: "npu", "pim", "host" (glue ops: reshapes, shape math, KV concat bookkeeping),
"gpu" (a system's GPU, speccc.hw.system: `roofline_gpu`, tensor parallel included).
An op's device comes from its `device` attribute (set by `partition`), else the
default placement below.

Estimates come from the registered targets (`speccc.targets`: each target's `cost`; the
NPU's tiling model, the PIM emulator run on the op's shape, the free host), so adding a
target adds a device here. The *rooflines* below, time = max(flops / peak, bytes /
bandwidth) from the hardware description alone, are the documented lower bound
(`roofline_estimators()`; `CostModel(hw, roofline_estimators())` for fast estimates).

Glue ops (`is_glue`: views, shape math, layout permutations absorbed into DMA, and the
KV-cache concat, an in-place append) default to "host" and cost nothing; moving an
activation between NPU and PIM costs `transfer_cost` (a DRAM round trip, not the host link).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from speccc.hw.config import HwConfig
from speccc.ir.opdefs import op_cost
from speccc.ir.types import dim_eval

DEVICES = ("npu", "pim", "host", "gpu")

# Ops that move no data worth timing: views, shape math, constants, weights at rest.
FREE_OPS = {"weight", "const", "sym_dims", "shape", "size", "reshape", "squeeze",
            "unsqueeze", "identity"}
# Without a partition, GEMV-shaped ops (weights or KV streamed once) go to PIM.
PIM_DEFAULT = {"linear", "attention", "gated_mlp", "matmul_nbits"}


@dataclass(frozen=True)
class OpCost:
    latency_ns: float
    energy_pj: float
    bytes_moved: float   # bytes crossing the device's memory interface
    flops: float
    bound: str           # "compute", "memory" or "overhead"


def _num(x, bindings) -> float:
    v = dim_eval(x, bindings)
    if not isinstance(v, int):
        from speccc.errors import SpecccError
        raise SpecccError(f"cost needs bound symbols: {v} (pass --bind)")
    return float(v)


def weight_bytes(op, bindings) -> float:
    """Bytes of the op's operands that are stored weights (PIM keeps these in banks)."""
    total = 0.0
    for v in op.operands:
        if v.op is not None and v.op.name == "weight":
            total += _num(v.type.nbytes(), bindings)
    return total


# Layout permutations: the consumer's (strided, multi-dimensional) DMA absorbs them.
LAYOUT_OPS = {"transpose"}


def is_kv_append(op) -> bool:
    """A concat of a KV-cache past argument (graph attr `kv_cache`) with new rows."""
    if op.name != "concat" or not op.operands or op.operands[0].op is not None:
        return False
    g = op.graph
    pasts = {e[0] for e in (g.attrs.get("kv_cache") or [])} if g is not None else set()
    return op.operands[0].name in pasts


def is_glue(op) -> bool:
    """Ops with no kernel of their own wherever they run (see the module docstring)."""
    return op.name in FREE_OPS or op.name in LAYOUT_OPS or is_kv_append(op)


def default_device(op) -> str:
    if is_glue(op):
        return "host"
    if "device" in op.attrs:
        return op.attrs["device"]
    return "pim" if op.name in PIM_DEFAULT else "npu"


Estimator = Callable[[HwConfig, object, Mapping[str, int]], OpCost]


def roofline_npu(hw: HwConfig, op, bindings) -> OpCost:
    c = op_cost(op)
    flops = _num(c.flops, bindings)
    nbytes = _num(c.bytes_read, bindings) + _num(c.bytes_written, bindings)
    peak = 2 * hw.derived()["npu_peak_macs_per_s"] / 1e9  # flop/ns
    t_c, t_m = flops / peak, nbytes / hw.npu.ext_bandwidth_gbs
    energy = nbytes * 8 * hw.energy.external_pj_per_bit + flops / 2 * hw.energy.mac_pj
    bound = "compute" if t_c >= t_m else "memory"
    return OpCost(max(t_c, t_m), energy, nbytes, flops, bound)


PIM_WORD = 2   # bytes: PIM banks hold and MAC 16-bit words (fp16/bf16) whatever the IR dtype


def pim_bytes(t, bindings) -> float:
    """A tensor's bytes as PIM stores and moves it: floats as 16-bit words."""
    if t.dtype.is_float:
        return _num(t.numel(), bindings) * PIM_WORD
    return _num(t.nbytes(), bindings)


def roofline_pim(hw: HwConfig, op, bindings) -> OpCost:
    """Bytes in 16-bit PIM words (an fp32 model costs what its fp16 twin does, as the
    targets' emulator-calibrated model and the MAC rate count them)."""
    c = op_cost(op)
    d = hw.derived()
    flops = _num(c.flops, bindings)
    total = _num(c.bytes_read, bindings) + _num(c.bytes_written, bindings)
    floats = [v.type for v in (*op.operands, *op.results) if v.type.dtype.is_float]
    if floats:   # the op's own traffic, rescaled from its dtype to PIM words
        total *= PIM_WORD / (floats[0].dtype.itemsize_bits / 8)
    stored = [v for v in op.operands if v.op is not None and v.op.name == "weight"]
    if op.name == "attention":  # the KV cache lives in the banks too
        stored = list(op.operands[1:3])
    inside = sum(pim_bytes(v.type, bindings) for v in stored)
    outside = max(total - inside, 0.0)
    t_c = flops / (2 * d["peak_pim_macs_per_s"] / 1e9)
    t_m = inside / d["peak_internal_gbs"] + outside / d["peak_external_gbs"]
    energy = (inside * 8 * hw.energy.read_internal_pj_per_bit
              + outside * 8 * hw.energy.external_pj_per_bit + flops / 2 * hw.energy.mac_pj)
    bound = "compute" if t_c >= t_m else "memory"
    return OpCost(max(t_c, t_m), energy, total, flops, bound)


def feeds_residual(op) -> bool:
    """A weight GEMM whose result (through glue) is added to the residual stream: the
    row-parallel GEMMs of Megatron-style tensor parallelism (attention output, FFN down),
    after which the partial sums are all-reduced."""
    if op.name not in ("linear", "gated_mlp", "matmul", "gemm", "matmul_nbits") \
            or weight_bytes(op, {}) == 0:
        return False
    stack, seen = list(op.results), set()
    while stack:
        for user, _ in stack.pop().users:
            if user in seen:
                continue
            seen.add(user)
            if user.name == "add":
                return True
            if is_glue(user):
                stack.extend(user.results)
    return False


def allreduce_cost(hw: HwConfig, nbytes: float) -> OpCost:
    """Ring all-reduce of `nbytes` over the system's xPUs (`[system] xpus`, the
    `[system.xpu_link]`): 2(n-1) steps, each sending nbytes/n per xPU at the link's
    per-direction bandwidth after its latency; energy for every byte every xPU sends."""
    n = hw.system.xpus
    if n <= 1 or nbytes <= 0:
        return OpCost(0.0, 0.0, 0.0, 0.0, "overhead")
    lk = hw.system.xpu_link
    steps = 2 * (n - 1)
    sent = steps * nbytes / n                       # per xPU
    return OpCost(steps * lk.latency_ns + sent / lk.bandwidth_gbs,
                  sent * n * 8 * lk.energy_pj_per_bit, sent * n, 0.0, "memory")


def roofline_gpu(hw: HwConfig, op, bindings) -> OpCost:
    """A GPU op: one kernel launch + max(compute, memory) at the preset's achievable
    fractions of peak (`compute_efficiency`, `memory_efficiency`), over `xpus` GPUs in
    tensor parallel: FLOPs and stored bytes (weights; attention's KV cache) split evenly,
    activations read whole by every GPU, and a ring all-reduce of the result after each
    row-parallel GEMM (`feeds_residual`). Energy: FLOPs x flop_pj + every GPU's memory
    bytes x mem_pj_per_bit + the all-reduce's link bytes: dynamic only. The GPUs' static
    power is charged per run over its wall time (`gpu_static_pj`, `standby_pj`), not per
    op."""
    from speccc.errors import SpecccError
    g = hw.gpu
    if g is None:
        raise SpecccError(f"{hw.name} has no GPU ([gpu] section): the gpu device needs a "
                          "GPU system (speccc hw list: systems)")
    n = hw.system.xpus
    c = op_cost(op)
    flops = _num(c.flops, bindings)
    total = _num(c.bytes_read, bindings) + _num(c.bytes_written, bindings)
    stored = weight_bytes(op, bindings)
    if op.name == "attention":
        stored = sum(_num(v.type.nbytes(), bindings) for v in op.operands[1:3])
    stored = min(stored, total)
    per_gpu = stored / n + (total - stored)
    t_c = flops / n / (g.peak_tflops * 1e3 * g.compute_efficiency)   # TFLOP/s = 1e3/ns
    t_m = per_gpu / (g.mem_bandwidth_gbs * g.memory_efficiency)
    ar = allreduce_cost(hw, _num(op.results[0].type.nbytes(), bindings)) \
        if n > 1 and feeds_residual(op) else host_cost(hw, op, bindings)
    latency = g.kernel_launch_ns + max(t_c, t_m) + ar.latency_ns
    energy = flops * g.flop_pj + per_gpu * n * 8 * g.mem_pj_per_bit + ar.energy_pj
    bound = "compute" if t_c >= t_m else "memory"
    return OpCost(latency, energy, per_gpu * n, flops, bound)


def gpu_static_pj(hw: HwConfig, ns: float) -> float:
    """Every GPU's static (idle, powered) draw over `ns` of wall time (W x ns = 1e3 pJ).
    Charged per run over its wall time (runtime/metrics.py, the dse closed forms, through
    `standby_pj`), not per op: a powered board draws it while it waits too (host
    transfers, the PIM stacks' attention in an AttAcc system), not only while a kernel
    runs. 0 without a GPU."""
    if hw.gpu is None:
        return 0.0
    return hw.gpu.static_power_w * hw.system.xpus * ns * 1e3


def pim_background_pj(hw: HwConfig, ns: float) -> float:
    """The PIM DRAM's background (standby) draw over `ns` of wall time (mW x ns = 1 pJ) on
    every channel of every PIM device: the DRAM stays powered whether a channel works or
    waits, so like `gpu_static_pj` it is charged per run (runtime/metrics.py, the dse
    closed forms, through `standby_pj`), not per op. 0 without PIM or without [energy]
    background_mw_per_channel."""
    if hw.pim is None:
        return 0.0
    return hw.energy.background_mw_per_channel * hw.pim.channels * ns


def standby_pj(hw: HwConfig, ns: float) -> float:
    """The system's power drawn whether it works or waits, over `ns` of a run's wall time:
    the PIM DRAM's background (`pim_background_pj`) + the GPUs' static power
    (`gpu_static_pj`). The runtime's report and the dse closed forms add it once per run,
    on top of the ops' (dynamic) energy."""
    return pim_background_pj(hw, ns) + gpu_static_pj(hw, ns)


def pim_link_cost(hw: HwConfig, op, bindings) -> OpCost:
    """A PIM op in a system whose xPU reaches PIM over a link (`[system.pim_link]`,
    AttAcc): its activations (operands not stored in the banks, and results) cross the
    link, one latency each way. Zero where PIM is the xPU's own DRAM (device presets:
    `transfer_cost` prices those crossings)."""
    lk = hw.system.pim_link
    if lk is None:
        return OpCost(0.0, 0.0, 0.0, 0.0, "overhead")
    stored = {id(v) for v in op.operands if v.op is not None and v.op.name == "weight"}
    if op.name == "attention":
        stored |= {id(v) for v in op.operands[1:3]}
    moved = sum(pim_bytes(v.type, bindings) for v in (*op.operands, *op.results)
                if id(v) not in stored)
    return OpCost(2 * lk.latency_ns + moved / lk.bandwidth_gbs,
                  moved * 8 * lk.energy_pj_per_bit, moved, 0.0, "memory")


PER_REQUEST = {"attention"}  # ops whose operands are per-request (KV), not shared weights


def batched_bindings(op, bindings, batch: int) -> dict:
    """The bindings op is priced at in a forward of `batch` requests of T new positions
    each: an op over shared weights sees batch*T rows; a per-request op (attention, over
    each request's own KV cache) keeps T and runs once per request
    (`per_request_scale`). The runtime (ModelCosts) and the partition pass share this."""
    if batch == 1 or op.name in PER_REQUEST or "T" not in bindings:
        return dict(bindings)
    return {**bindings, "T": batch * bindings["T"]}


def per_request_scale(hw: HwConfig, device: str, op, latency: float, energy: float,
                      batch: int) -> tuple[float, float]:
    """(latency, energy) of `batch` requests' kernels of a per-request op priced once:
    B kernels back to back, but one launch on a GPU. Op energy is dynamic only (the
    launch's own time draws only static power, charged per run: `standby_pj`), so it
    scales by B."""
    if op.name not in PER_REQUEST or batch == 1:
        return latency, energy
    fixed = hw.gpu.kernel_launch_ns if device == "gpu" else 0.0
    return fixed + (latency - fixed) * batch, energy * batch


def host_cost(hw: HwConfig, op, bindings) -> OpCost:
    return OpCost(0.0, 0.0, 0.0, 0.0, "overhead")


def transfer_cost(hw: HwConfig, nbytes: float) -> OpCost:
    """Moving an activation of `nbytes` between NPU and PIM.

    NPU and PIM share the DRAM interface (the NPU's `ext_bandwidth_gbs`): the producer
    writes the activation to DRAM and the consumer reads it (the PIM kernels' own WRGB
    loads are timed by the emulator on top). So a crossing costs one unloaded DRAM access
    latency, (tRP + tRCD + CL)·tCK, plus the bytes at the NPU's DRAM bandwidth, with
    off-chip energy per bit. The host [link] (PCIe-class) is not on this path.
    """
    if nbytes <= 0:
        return OpCost(0.0, 0.0, 0.0, 0.0, "overhead")
    lk = hw.system.pim_link
    if lk is not None:    # a system whose xPU reaches PIM over a link (AttAcc: NVLink)
        return OpCost(lk.latency_ns + nbytes / lk.bandwidth_gbs,
                      nbytes * 8 * lk.energy_pj_per_bit, nbytes, 0.0, "memory")
    t = hw.pim.timing
    latency = (t.tRP + t.tRCD + t.CL) * t.tCK_ns
    ns = latency + nbytes / hw.npu.ext_bandwidth_gbs
    return OpCost(ns, nbytes * 8 * hw.energy.external_pj_per_bit, nbytes, 0.0, "memory")


def target_estimators() -> dict[str, Estimator]:
    """device -> estimator: every registered target's `cost` (speccc.targets)."""
    from speccc.targets import targets
    return {name: t.cost for name, t in targets().items()}


def roofline_estimators() -> dict[str, Estimator]:
    """The rooflines alone (hardware description only): the documented lower bound."""
    return {"npu": roofline_npu, "pim": roofline_pim, "host": host_cost, "gpu": roofline_gpu}


class CostModel:
    def __init__(self, hw: HwConfig, estimators: Mapping[str, Estimator] | None = None):
        self.hw = hw
        self.estimators = dict(estimators or target_estimators())

    def op_cost(self, op, device: str, bindings: Mapping[str, int]) -> OpCost:
        if device not in self.estimators:
            raise ValueError(f"unknown device {device!r}; known: {', '.join(self.estimators)}")
        if op.name in FREE_OPS:
            return host_cost(self.hw, op, bindings)
        return self.estimators[device](self.hw, op, bindings)

    def graph_costs(self, graph, bindings: Mapping[str, int]):
        """(op, device, OpCost) in topological order, device from attrs or the default."""
        return [(op, default_device(op), self.op_cost(op, default_device(op), bindings))
                for op in graph.ops()]
