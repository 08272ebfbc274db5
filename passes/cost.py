"""cost: per-op latency and energy on the NPU and on PIM, recorded in the IR.

    speccc opt m.ir -p 'cost{hw=hbm-pim,bind=T=1:P=128}'

Rewrites: every op that is not glue (`speccc.costmodel.is_glue`: views, shape math,
layout permutations, KV-cache appends) gets

    cost_ns = [npu, pim]     latency in ns on each device
    cost_pj = [npu, pim]     energy in pJ

for the hardware description `hw` (preset name or .toml path) with the symbolic dims
bound by `bind` (the types themselves stay symbolic); the graph gets `cost_hw` and
`cost_bind` attributes so `partition` uses the same setting. Glue ops get no cost.
NPU numbers come from the NPU target's tiling model (targets/npu, ESTIMATORS["npu"]);
PIM numbers from the PIM emulator run on the op's actual GEMV shapes
(passes/_cost_pim.py, ESTIMATORS["pim"]), and `inf` for ops PIM cannot run: no PIM
lowering (`targets.pim.codegen.unsupported_reason`) or a matrix that does not fit.
Guarantees: nothing else in the IR changes; numbers are deterministic (6 significant
digits); emulator results are cached per (hw, kind, shape) for the process.
"""
from __future__ import annotations

from speccc.costmodel import CostModel, is_glue
from speccc.ir.types import dim_eval
from speccc.passes._cost_pim import gemv_run, pim_cost, pim_run  # noqa: F401  (re-exported)
from speccc.passes.infer_shapes import parse_bindings
from speccc.passmanager import Pass, register_pass

DEFAULT_HW = "hbm-pim"


def round6(x: float) -> float:
    """6 significant digits (deterministic IR text); inf and nan pass through."""
    return x if x != x or x in (float("inf"), float("-inf")) else float(f"{x:.6g}")


def graph_setting(graph, hw: str | None = None, bind: list | None = None):
    """(HwConfig, bindings) for a graph: explicit values, else the graph's `cost_hw` /
    `cost_bind` attributes (set by this pass), else the default preset and no bindings."""
    from speccc.hw import load_hw
    name = hw or graph.attrs.get("cost_hw") or DEFAULT_HW
    items = bind if bind is not None else graph.attrs.get("cost_bind") or []
    return load_hw(name), parse_bindings(items)


def setting_attrs(hw, bindings) -> tuple[str, list[str]]:
    """The graph attributes (`cost_hw`, `cost_bind`) that name a cost setting."""
    return hw.source or hw.name, [f"{k}={v}" for k, v in bindings.items()]


def pim_lowerable(op, bindings) -> bool:
    from speccc.targets.pim.codegen import unsupported_reason
    shapes = [[dim_eval(d, bindings) for d in v.type.shape] for v in op.operands]
    return unsupported_reason(op.name, op.attrs, shapes) is None


def annotate(graph, hw, bindings, model: CostModel | None = None) -> None:
    """Set cost_ns / cost_pj on every kernel op and record the setting on the graph."""
    model = model or CostModel(hw)
    for op in graph.ops():
        if is_glue(op):
            for k in ("cost_ns", "cost_pj"):
                op.attrs.pop(k, None)
            continue
        npu = model.op_cost(op, "npu", bindings)
        if pim_lowerable(op, bindings):
            pim = model.op_cost(op, "pim", bindings)
            pim_ns, pim_pj = pim.latency_ns, pim.energy_pj
        else:  # partition must not choose PIM for an op codegen cannot emit
            pim_ns = pim_pj = float("inf")
        op.attrs["cost_ns"] = [round6(npu.latency_ns), round6(pim_ns)]
        op.attrs["cost_pj"] = [round6(npu.energy_pj), round6(pim_pj)]
    graph.attrs["cost_hw"], graph.attrs["cost_bind"] = setting_attrs(hw, bindings)


@register_pass
class Cost(Pass):
    name = "cost"
    summary = "record per-op latency/energy on [npu, pim] (cost_ns, cost_pj)"
    hw: str = DEFAULT_HW
    bind: list = None

    def run_on_graph(self, graph) -> None:
        hw, bindings = graph_setting(graph, self.hw, self.bind or [])
        annotate(graph, hw, bindings)


def register() -> None:
    """Called by speccc.costmodel.load_estimators: the calibrated PIM model."""
    from speccc.passes._cost_pim import register as reg
    reg()
