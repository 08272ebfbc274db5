"""The NPU target: speccc.targets.Target for the systolic-array NPU.

| hook | what | where |
|---|---|---|
| `can_lower(op, bindings)` | every op: GEMM stages or one vector pass | `kernels.py` |
| `cost(hw, op, bindings)` | tiling search, timing and energy | `estimator.py`, `timing.py` |
| `place(module, hw, request)` | nothing: operands stream from DRAM | |
| `lowering(hw, bindings).lower(op, site)` | the kernel's listing and timing | `program.py` |
| `emulator(hw, mode).run(op, inputs, label)` | numpy semantics, GEMMs tile by tile | `semantics.py` |
| `time(kernel_op)` | totals of an `npu.kernel` | `speccc.targets.interface` |

A lowered op becomes `npu.kernel` with `listings = ["npu/GRAPH/IIII_OP.npu"]` (IIII: its
index among the graph's NPU ops), one-entry lists `cycles` (NPU clock), `ns`,
`energy_pj`, `bytes_in` / `bytes_out` (the op table's bytes read / written), and
`bound`, `roofline_ns` (costmodel.roofline_npu, the documented lower bound),
`efficiency`, `timing = "roofline"`. Each graph also gets `npu/GRAPH/index.txt`.
"""
from __future__ import annotations

from speccc.costmodel import roofline_npu
from speccc.ir.opdefs import op_cost
from speccc.targets.interface import Kernel, NoPlacement, kernel_timing


class NpuLowering:
    def __init__(self, hw, bindings):
        self.hw, self.bindings = hw, dict(bindings)
        self.rows: list[str] = []
        self.total_ns = 0.0

    def lower(self, op, site) -> Kernel:
        from speccc.targets.npu.kernels import GEMM_OPS, kernel_for
        from speccc.targets.npu.program import format_kernel
        from speccc.targets.npu.timing import npu_model
        hw = self.hw
        k = kernel_for(hw, op, self.bindings)
        kt = npu_model(hw).kernel(k)
        rel = f"npu/{site.graph}/{site.index:04d}_{op.name}.npu"
        text = format_kernel(hw, k, f"#{site.index} {op.name} ({op.where()})")
        self.rows.append(f"{site.index:4d}  {op.name:12s} {kt.ns:12.1f} ns "
                         f"{kt.energy_pj / 1e6:10.3f} uJ  "
                         f"{'gemm' if op.name in GEMM_OPS else 'vector':6s}  {op.where()}")
        self.total_ns += kt.ns
        c = op_cost(op)
        roof_ns = roofline_npu(hw, op, self.bindings).latency_ns
        attrs = {"listings": [rel], "cycles": [int(round(kt.ns * (hw.npu.clock_mhz / 1000)))],
                 "ns": [kt.ns], "energy_pj": [kt.energy_pj], "bytes_in": [int(c.bytes_read)],
                 "bytes_out": [int(c.bytes_written)], "bound": kt.bound,
                 "roofline_ns": roof_ns, "timing": "roofline"}
        if roof_ns and kt.ns:
            attrs["efficiency"] = roof_ns / kt.ns
        return Kernel(attrs, {rel: text})

    def finish_graph(self, graph_name: str) -> Kernel:
        """`npu/GRAPH/index.txt`: one line per NPU kernel (index, op, ns, uJ, kind)."""
        head = [f"# NPU programs of @{graph_name} on {self.hw.name}, bindings "
                + ",".join(f"{k}={v}" for k, v in sorted(self.bindings.items())),
                f"# {len(self.rows)} ops, {self.total_ns / 1e3:.2f} us in sequence", ""]
        index = {f"npu/{graph_name}/index.txt": "\n".join(head + self.rows) + "\n"}
        self.rows, self.total_ns = [], 0.0
        return Kernel({}, index)


class NpuEmulation:
    def __init__(self, hw):
        self.hw = hw

    def run(self, op, inputs, label: str):
        from speccc.targets.npu.semantics import run_op
        return run_op(op, inputs, self.hw)


class NpuTarget(NoPlacement):
    name = "npu"
    kernel_op = "npu.kernel"

    def can_lower(self, op, bindings) -> bool:
        return True

    def cost(self, hw, op, bindings):
        from speccc.targets.npu.estimator import npu_cost
        return npu_cost(hw, op, bindings)

    def lowering(self, hw, bindings) -> NpuLowering:
        return NpuLowering(hw, bindings)

    def emulator(self, hw, mode: str, timings: list | None = None) -> NpuEmulation:
        return NpuEmulation(hw)

    def time(self, kernel_op):
        return kernel_timing(kernel_op)
