"""lower-npu: replace every NPU op with an `npu.kernel` op whose program listing travels
with the module.

    speccc opt m.ir -p 'lower-npu{hw=hbm-pim,bind=T=1:P=16}'

Rewrites: every non-glue op whose device is the NPU (its `device` attribute, or by
default everything PIM does not take) becomes, in place, `npu.kernel {op = NAME,
listings = ["npu/GRAPH/IIII_OP.npu"], cycles, ns, energy_pj, bytes_in, bytes_out,
roofline_ns, bound, efficiency, timing = "roofline", ...its own attributes}`; the NPU
target (targets/npu/target.py) chooses the tiling, writes the program listing into
`Module.listings` and `npu/GRAPH/index.txt` (every NPU kernel, its time and energy).
Each graph gets `lowered_npu = [["hw", NAME]]`. Run it after lower-pim (PIM kernels are
never re-lowered). Guarantees: the listings and timings equal the NPU cost model's
(`target("npu").cost`); the kernel op keeps the op's semantics.
"""
from __future__ import annotations

from speccc.passes._lower import LowerPass
from speccc.passmanager import register_pass


@register_pass
class LowerNpu(LowerPass):
    name = "lower-npu"
    summary = "replace NPU ops with npu.kernel ops (program listings, tiled timing)"
    device = "npu"
