"""The target interface: what every device speccc compiles for implements, and the
registry passes and the runtime ask.

    from speccc.targets import target, targets
    t = target("pim")
    t.can_lower(op, bindings)          # has this target a kernel for op (at these shapes)?
    t.cost(hw, op, bindings)           # OpCost: latency, energy, bytes (cost, partition, runtime)
    t.place(module, hw, request)       # map data to the device (PIM: channels/banks/rows)
    lowering = t.lowering(hw, bindings)
    kernel = lowering.lower(op, number)  # Kernel: kernel-op attributes + listing texts
    t.emulator(hw, mode).run(op, inputs, label)   # execute functionally (exec --on emulator)
    t.time(kernel_op)                  # KernelTiming read back from a lowered op
    t.describe(kernel_op)              # the target's own report fields (PIM: phases, placement)

A target is one folder under targets/ (or any module, see tests/gpu_target.py) with a
class implementing `Target`, registered once with `register(...)`; speccc/targets
registers the built-in ones (one line each). Passes look targets up by device name
(an op's `device` attribute); nothing outside this module edits the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, runtime_checkable

from speccc.errors import SpecccError


@dataclass(frozen=True)
class PlaceRequest:
    """What `place` asks of every target: bindings, KV room, a draft/target split."""
    bindings: Mapping[str, int]
    max_context: int = 0
    split: str = ""          # "GRAPH:N": graph @GRAPH gets the first N channels


@dataclass(frozen=True)
class Kernel:
    """One lowered op: the kernel op's attributes (besides the lowered op's own) and the
    listing texts it names, keyed by their path in the output folder."""
    attrs: dict
    listings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class KernelTiming:
    """Totals of a kernel op over its listings (phases)."""
    cycles: int
    ns: float
    energy_pj: float
    bytes_in: int
    bytes_out: int


@runtime_checkable
class Target(Protocol):
    name: str                # device name: `device` attributes, cost columns
    kernel_op: str | None    # the op lowering produces ("pim.kernel"), None: no lowering

    def can_lower(self, op, bindings: Mapping[str, int]) -> bool: ...

    def cost(self, hw, op, bindings: Mapping[str, int]): ...

    def place(self, module, hw, request: PlaceRequest) -> None: ...

    def lowering(self, hw, bindings: Mapping[str, int]): ...

    def emulator(self, hw, mode: str, timings: list | None = None): ...

    def time(self, kernel_op) -> KernelTiming: ...

    def describe(self, kernel_op) -> dict: ...


_TARGETS: dict[str, Target] = {}


def register(t: Target) -> Target:
    """Make `t` available by its name (one line per target)."""
    if not isinstance(t, Target):
        raise TypeError(f"{t!r} does not implement speccc.targets.Target")
    if t.name in _TARGETS and type(_TARGETS[t.name]) is not type(t):
        raise ValueError(f"target {t.name!r} registered twice")
    _TARGETS[t.name] = t
    return t


def unregister(name: str) -> None:
    """Remove a target registered by a plugin or a test."""
    _TARGETS.pop(name, None)


def target(name: str) -> Target:
    if name not in _TARGETS:
        raise SpecccError(f"unknown target {name!r}; known: {', '.join(_TARGETS)}")
    return _TARGETS[name]


def targets() -> dict[str, Target]:
    """Registered targets by name, in registration order."""
    return dict(_TARGETS)


def kernel_timing(kernel_op) -> KernelTiming:
    """Totals of a kernel op's per-listing attributes (every target's kernels carry
    `cycles`, `ns`, `energy_pj`, `bytes_in`, `bytes_out`, one entry per listing)."""
    a = kernel_op.attrs
    return KernelTiming(*(sum(a[k]) for k in ("cycles", "ns", "energy_pj", "bytes_in",
                                                 "bytes_out")))


class NoPlacement:
    """Mixin for targets that keep no data of their own and report nothing beyond the
    common timing figures (place is a no-op, describe is empty)."""

    def place(self, module, hw, request: PlaceRequest) -> None:
        return None

    def describe(self, kernel_op) -> dict:
        return {}
