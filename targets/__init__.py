"""speccc's targets, registered here one line each (the interface: interface.py).

    from speccc.targets import target, targets
    target("pim").cost(hw, op, {"T": 1})

A new target is one folder (a class implementing `Target`) and one `register(...)` line
here, or in the code that brings it (tests/gpu_target.py registers a toy roofline).
"""
from speccc.targets.interface import (Kernel, KernelTiming, NoPlacement, PlaceRequest,  # noqa: F401
                                      Target,
                                      kernel_timing, register, target, targets, unregister)
from speccc.targets.npu.target import NpuTarget
from speccc.targets.pim.target import PimTarget
from speccc.targets.host import HostTarget
from speccc.targets.gpu.target import GpuTarget

register(NpuTarget())
register(PimTarget())
register(HostTarget())
register(GpuTarget())
