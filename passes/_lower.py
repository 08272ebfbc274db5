"""What lower-pim and lower-npu share: replace every op a target runs with its kernel op.

An op is lowered for target D when it is not glue, not already a kernel, and its device
(`speccc.costmodel.default_device`: the `device` attribute, else the GEMV-to-PIM
default) is D. The target's lowering (speccc.targets: `target(D).lowering(hw, bindings)`)
turns it into a `Kernel` (kernel-op attributes + listing texts); the op is replaced in
place (same operands, results, location and position in the order) by `D.kernel` with
the op's attributes, `op = NAME`, `device = D` and the kernel's attributes, and the
listings go to the module's listing store (`Module.listings`). Each graph records
`lowered_D = [["hw", NAME], ...]` (plus the target's per-graph figures); running the
pass again lowers nothing and keeps that record.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from speccc.costmodel import default_device, is_glue
from speccc.ir.ops.kernel import KERNEL_OPS
from speccc.passes.infer_shapes import parse_bindings
from speccc.passmanager import Pass
from speccc.targets import target


@dataclasses.dataclass(frozen=True)
class KernelSite:
    """Where a lowered op sits: its graph, the printer's %N of its first result (PIM
    listing names follow it) and its index among the graph's ops lowered to the target
    (NPU listing names follow that)."""
    graph: str
    number: int
    index: int


def lower_module(module, device: str, hw, bindings) -> None:
    t = target(device)
    lowering = t.lowering(hw, bindings)
    for g in module:
        number = index = 0
        for op in g.ops():
            site, number = KernelSite(g.name, number, index), number + len(op.results)
            if op.name in KERNEL_OPS or is_glue(op) or default_device(op) != device:
                continue
            kernel = lowering.lower(op, site)
            index += 1
            g.replace_op(op, t.kernel_op,
                         {**op.attrs, "op": op.name, "device": device, **kernel.attrs})
            module.listings.update(kernel.listings)
        key = f"lowered_{device}"
        if index == 0 and key in g.attrs:
            continue            # lowered before: nothing new, keep its record
        done = lowering.finish_graph(g.name)
        module.listings.update(done.listings)
        g.attrs[key] = [["hw", hw.label], *map(list, done.attrs.items())]


@dataclasses.dataclass
class LowerPass(Pass):
    """Base of the lowering passes: options hw (preset or .toml) and bind (T=1:P=128)."""
    device: ClassVar[str] = ""
    hw: str = "hbm-pim"
    bind: list = None

    def run(self, module) -> None:
        from speccc.hw import load_hw
        lower_module(module, self.device, load_hw(self.hw), parse_bindings(self.bind))
