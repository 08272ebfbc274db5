"""A plug-in target in a few dozen lines: a toy GPU roofline with hard-coded A100
constants (the real, hardware-file-driven one is speccc.targets.gpu, device "gpu").

Importing this module registers it as "toygpu" (the one line at the bottom);
`cost{devices=...}`, `partition{devices=npu:toygpu}` and
`CostModel(hw).op_cost(op, "toygpu", b)` then use it, with nothing in passes/ or speccc/
changed. It keeps no data (no placement) and has no kernels of its own (no lowering);
ops run with their numpy semantics.
"""
from __future__ import annotations

from speccc.costmodel import OpCost
from speccc.ir.opdefs import lookup, op_cost
from speccc.ir.types import dim_eval
from speccc.targets import NoPlacement, kernel_timing, register

PEAK_FLOP_PER_NS = 312e3     # A100 dense fp16 tensor cores, 312 TFLOP/s
HBM_BYTES_PER_NS = 2039.0    # A100 80 GB HBM2e, 2039 GB/s
LAUNCH_NS = 4000.0           # one kernel launch
PJ_PER_BYTE = 8 * 7.0        # HBM2e ~7 pJ/bit


class GpuEmulation:
    def run(self, op, inputs, label: str):
        od = lookup(op.name)
        return od.ref(list(inputs), od.full_attrs(op.attrs))


class ToyGpuTarget(NoPlacement):
    name = "toygpu"
    kernel_op = None

    def can_lower(self, op, bindings) -> bool:
        return True

    def cost(self, hw, op, bindings) -> OpCost:
        c = op_cost(op)
        flops = float(dim_eval(c.flops, dict(bindings)))
        nbytes = float(dim_eval(c.bytes_read, dict(bindings))
                       + dim_eval(c.bytes_written, dict(bindings)))
        t_c, t_m = flops / PEAK_FLOP_PER_NS, nbytes / HBM_BYTES_PER_NS
        return OpCost(LAUNCH_NS + max(t_c, t_m), nbytes * PJ_PER_BYTE, nbytes, flops,
                      "compute" if t_c >= t_m else "memory")

    def lowering(self, hw, bindings):
        raise NotImplementedError("the GPU baseline has no kernels")

    def emulator(self, hw, mode: str, timings: list | None = None) -> GpuEmulation:
        return GpuEmulation()

    def time(self, kernel_op):
        return kernel_timing(kernel_op)


register(ToyGpuTarget())
