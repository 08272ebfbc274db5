"""The NPU's cost (NpuTarget.cost): kernel + tiled timing -> OpCost.

    from speccc.targets.npu.estimator import npu_cost, npu_kernel_time
    npu_cost(hw, op, {"T": 1, "P": 128})            # OpCost, as target("npu").cost
    npu_cost(hw, op, b, bw_share=0.5)               # half the DRAM channels busy with PIM

The roofline (speccc.costmodel.roofline_npu) stays the documented bound: this model is
never faster than max(flops / peak, bytes / bandwidth) for the bytes it actually moves.
"""
from __future__ import annotations

from speccc.costmodel import OpCost
from speccc.ir.opdefs import op_cost
from speccc.ir.types import dim_eval
from speccc.targets.npu.kernels import kernel_for
from speccc.targets.npu.timing import KernelTime, npu_model


def npu_kernel_time(hw, op, bindings, bw_share: float = 1.0) -> KernelTime:
    return npu_model(hw, bw_share).kernel(kernel_for(hw, op, bindings))


def npu_cost(hw, op, bindings, bw_share: float = 1.0) -> OpCost:
    kt = npu_kernel_time(hw, op, bindings, bw_share)
    flops = dim_eval(op_cost(op).flops, dict(bindings))
    return OpCost(kt.ns, kt.energy_pj, kt.dram_bytes, float(flops), kt.bound)

