"""cost: per-op latency and energy on the NPU and on PIM, recorded in the IR.

    speccc opt m.ir -p 'cost{hw=hbm-pim,bind=T=1:P=128}'

Rewrites: every op that is not glue (`speccc.costmodel.is_glue`: views, shape math,
layout permutations, KV-cache appends) gets

    cost_ns = [npu, pim]     latency in ns on each device
    cost_pj = [npu, pim]     energy in pJ

one entry per device of `devices` (registered targets, speccc.targets; default npu:pim;
`cost{devices=npu:gpu}` prices a target a plugin registered; the graph then records
`cost_devices`, absent for the default pair),
for the hardware description `hw` (preset name or .toml path) with the symbolic dims
bound by `bind` (the types themselves stay symbolic); the graph gets `cost_hw` and
`cost_bind` attributes so `partition` uses the same setting. Glue ops get no cost.
Each number is the target's own `cost` (NPU: its tiling model, targets/npu; PIM: the
emulator run on the op's actual GEMV shapes, targets/pim/cost.py; plus, in a system whose
xPU reaches PIM over a link, the PIM op's link crossing, as the runtime charges it), and
`inf` where the
target cannot run the op (`can_lower` false: e.g. no PIM lowering) or it does not fit.
Guarantees: nothing else in the IR changes; numbers are deterministic (6 significant
digits); emulator results are cached per (hw, kind, shape) for the process.
"""
from __future__ import annotations

from speccc.costmodel import (CostModel, batched_bindings, is_glue, per_request_scale,
                              pim_link_cost)
from speccc.errors import SpecccError
from speccc.passes.infer_shapes import parse_bindings
from speccc.passmanager import Pass, register_pass
from speccc.targets import target

DEFAULT_HW = "hbm-pim"
DEFAULT_DEVICES = ["npu", "pim"]


def system_devices(hw) -> list[str]:
    """The devices a hardware description has (a GPU system may lack npu and pim)."""
    return [d for d in ("npu", "pim", "gpu") if getattr(hw, d) is not None]


def round6(x: float) -> float:
    """6 significant digits (deterministic IR text); inf and nan pass through."""
    return x if x != x or x in (float("inf"), float("-inf")) else float(f"{x:.6g}")


def graph_setting(graph, hw: str | None = None, bind: list | None = None):
    """(HwConfig, bindings) for a graph: explicit values, else the graph's `cost_hw` /
    `cost_bind` attributes (set by this pass), else the default preset and no bindings."""
    from speccc.hw import load_hw
    name = hw or graph.attrs.get("cost_hw") or DEFAULT_HW
    items = bind if bind is not None else graph.attrs.get("cost_bind") or []
    return load_hw(name, system=True), parse_bindings(items)


def setting_attrs(hw, bindings) -> tuple[str, list[str]]:
    """The graph attributes (`cost_hw`, `cost_bind`) that name a cost setting."""
    return hw.source or hw.name, [f"{k}={v}" for k, v in bindings.items()]


def cost_devices(graph) -> list[str]:
    """The devices (in order) of the graph's cost_ns / cost_pj entries."""
    return list(graph.attrs.get("cost_devices") or DEFAULT_DEVICES)


def device_cost(model: CostModel, op, device: str, bindings,
                batch: int = 1) -> tuple[float, float]:
    """(ns, pJ) of op on device for `batch` requests of T new positions each (priced as
    the runtime prices a batched forward: costmodel.batched_bindings, and a PIM op's
    crossing of an xPU<->PIM link, as ModelCosts adds it); inf where the target cannot
    lower it (partition must not choose a device whose codegen cannot emit the op)."""
    bind = batched_bindings(op, bindings, batch)
    if not target(device).can_lower(op, bind):
        return float("inf"), float("inf")
    c = model.op_cost(op, device, bind)
    lat, en = c.latency_ns, c.energy_pj
    if device == "pim":       # zero without a [system.pim_link] (device presets)
        x = pim_link_cost(model.hw, op, bind)
        lat, en = lat + x.latency_ns, en + x.energy_pj
    return per_request_scale(model.hw, device, op, lat, en, batch)


def annotate(graph, hw, bindings, model: CostModel | None = None,
             devices: list[str] | None = None, batch: int = 1,
             pricing: str | None = None) -> None:
    """Set cost_ns / cost_pj on every kernel op and record the setting on the graph
    (`cost_batch` too when the forward batches several requests; `cost_pricing` when
    `model` is not the whole device's target estimators: the partition pass's
    channels / cost-model options, so a later pass knows these prices are not its own)."""
    model = model or CostModel(hw)
    devices = list(devices or cost_devices(graph))
    for d in devices:
        if getattr(hw, d, True) is None:     # a system without that device (speccc.hw.system)
            raise SpecccError(f"cost: {hw.name} has no {d} (its devices: "
                              f"{', '.join(system_devices(hw))}); choose cost{{devices=...}}")
    for op in graph.ops():
        if is_glue(op):
            for k in ("cost_ns", "cost_pj"):
                op.attrs.pop(k, None)
            continue
        costs = [device_cost(model, op, d, bindings, batch) for d in devices]
        op.attrs["cost_ns"] = [round6(ns) for ns, _ in costs]
        op.attrs["cost_pj"] = [round6(pj) for _, pj in costs]
    graph.attrs["cost_hw"], graph.attrs["cost_bind"] = setting_attrs(hw, bindings)
    graph.attrs.pop("cost_devices", None)
    if devices != DEFAULT_DEVICES:
        graph.attrs["cost_devices"] = devices
    graph.attrs.pop("cost_batch", None)
    if batch != 1:
        graph.attrs["cost_batch"] = batch
    graph.attrs.pop("cost_pricing", None)
    if pricing:
        graph.attrs["cost_pricing"] = pricing


@register_pass
class Cost(Pass):
    name = "cost"
    summary = "record per-op latency/energy on [npu, pim] (cost_ns, cost_pj)"
    hw: str = DEFAULT_HW
    bind: list = None
    devices: list = None   # registered targets, ':'-separated (default npu:pim)

    def run_on_graph(self, graph) -> None:
        hw, bindings = graph_setting(graph, self.hw, self.bind or [])
        annotate(graph, hw, bindings, devices=self.devices or DEFAULT_DEVICES)
