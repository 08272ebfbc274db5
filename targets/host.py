"""The host: the free device of glue ops (views, shape math, layout permutations, KV
appends; `speccc.costmodel.is_glue`). It has no kernels: glue stays in the IR as is and
costs nothing."""
from __future__ import annotations

from speccc.costmodel import host_cost, is_glue
from speccc.targets.interface import NoPlacement


class HostTarget(NoPlacement):
    name = "host"
    kernel_op = None

    def can_lower(self, op, bindings) -> bool:
        return is_glue(op)

    def cost(self, hw, op, bindings):
        return host_cost(hw, op, bindings)

    def lowering(self, hw, bindings):
        raise NotImplementedError("host ops are not lowered")

    def emulator(self, hw, mode: str, timings: list | None = None):
        raise NotImplementedError("host ops run in the reference interpreter")

    def time(self, kernel_op):
        raise NotImplementedError("host ops have no kernels")
