"""The GPU target: speccc.targets.Target for a system's GPU (the baseline device of
`speccc baseline`), priced from the hardware file's [gpu] figures.

| hook | what | where |
|---|---|---|
| `can_lower(op, bindings)` | every op (a GPU runs anything) | |
| `cost(hw, op, bindings)` | launch + roofline at achievable efficiency, tensor parallel | `speccc.costmodel.roofline_gpu` |
| `place(module, hw, request)` | nothing: weights sit in the GPUs' own memory | |
| `lowering(hw, bindings)` | none: speccc emits no GPU kernels | |
| `emulator(hw, mode).run(op, inputs, label)` | numpy semantics (the op table's reference) | |

The cost is the documented model, not a measurement: time = kernel_launch_ns +
max(FLOPs / (peak x compute_efficiency), bytes / (bandwidth x memory_efficiency)) per
GPU, plus the all-reduce of tensor parallelism (docs/baselines.md).
"""
from __future__ import annotations

from speccc.costmodel import roofline_gpu
from speccc.targets.interface import NoPlacement, kernel_timing


class GpuEmulation:
    def run(self, op, inputs, label: str):
        from speccc.ir.opdefs import lookup
        od = lookup(op.name)
        return od.ref(list(inputs), od.full_attrs(op.attrs))


class GpuTarget(NoPlacement):
    name = "gpu"
    kernel_op = None

    def can_lower(self, op, bindings) -> bool:
        return True

    def cost(self, hw, op, bindings):
        return roofline_gpu(hw, op, bindings)

    def lowering(self, hw, bindings):
        from speccc.errors import SpecccError
        raise SpecccError("the gpu target has no kernels: speccc prices GPU ops (cost, "
                          "partition, speccc baseline) but lowers only for npu and pim")

    def emulator(self, hw, mode: str, timings: list | None = None) -> GpuEmulation:
        return GpuEmulation()

    def time(self, kernel_op):
        return kernel_timing(kernel_op)
