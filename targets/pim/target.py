"""The PIM target: speccc.targets.Target for DRAM banks that compute.

| hook | what | where |
|---|---|---|
| `can_lower(op, bindings)` | codegen has a kernel for the op at these shapes | `codegen.unsupported_reason` |
| `cost(hw, op, bindings)` | emulator-calibrated GEMV time, else the roofline | `cost.py` |
| `place(module, hw, request)` | weights / KV cache to channels, banks, rows | `placement.py` |
| `lowering(hw, bindings).lower(op, site)` | one listing per phase, timed by the emulator | `codegen.py`, `Timer` |
| `emulator(hw, mode).run(op, inputs, label)` | the kernel on the functional emulator | `emulator.py` |
| `time(kernel_op)` | totals of a `pim.kernel`'s phases | `speccc.targets.interface` |
| `describe(kernel_op)` | report fields: phases, placement | |

A lowered op becomes `pim.kernel` with, per phase (listing), `phases`, `listings` (paths
of the listing texts in the module's listing store: `pim/GRAPH.NNNN.OP.PHASE.pim`, NNNN
the op's `%N`), `cycles`, `ns`, `energy_pj`, `bytes_in`, `bytes_out`, `commands`, and
for the op `roofline_ns`, `bound` (internal / external), `efficiency` (roofline / time)
and `timing = "emulator"`. Programs equal up to row numbers and channel offsets are
timed once (a normalized twin at row 0, channel 0; `Timer` caches by listing text).
"""
from __future__ import annotations

from speccc.ir.types import dim_eval
from speccc.targets.interface import Kernel, kernel_timing

PHASE_STATS = ("cycles", "ns", "energy_pj", "bytes_in", "bytes_out", "commands")


class PimLowering:
    """Lowers PIM ops of one module for one hardware and binding (shared timing cache)."""

    def __init__(self, hw, bindings):
        from speccc.targets.pim.codegen import Timer
        self.hw, self.bindings = hw, dict(bindings)
        self.timer = Timer(hw)
        self.timers = {hw.pim.pu: self.timer}     # one per channel group's PU config
        self._timed = 0
        self._twins: dict = {}                    # see _twin_timings

    def lower(self, op, site) -> Kernel:
        from speccc.targets.pim.codegen import kernel_for, program_io, roofline
        from speccc.targets.pim.listing import format_program
        from speccc.targets.pim.codegen import Timer
        hw = self.hw.for_channels(op.attrs.get("pim_channels"))   # its group's PUs
        timer = self.timers.setdefault(hw.pim.pu, Timer(hw))
        shapes = [[dim_eval(d, self.bindings) for d in v.type.shape] for v in op.operands]
        stem = f"pim/{site.graph}.{site.number:04d}.{op.name}"
        kernel = kernel_for(op.name, op.attrs, hw, shapes, label=stem)
        timings = self._twin_timings(op, hw, timer, shapes, stem)
        stats = {k: [] for k in ("phases", "listings", *PHASE_STATS)}
        listings = {}
        for (phase, prog), res in zip(kernel.phases(), timings):
            b_in, b_out = program_io(prog, hw)
            rel = f"{stem}.{phase}.pim"
            listings[rel] = format_program(prog)
            for key, value in (("phases", phase), ("listings", rel), ("cycles", res.cycles),
                               ("ns", res.ns), ("energy_pj", res.energy_total_pj),
                               ("bytes_in", b_in), ("bytes_out", b_out),
                               ("commands", res.commands)):
                stats[key].append(value)
        roof_ns, bound = roofline(hw, kernel.work())
        ns = sum(stats["ns"])
        attrs = {**stats, "timing": "emulator", "roofline_ns": roof_ns, "bound": bound}
        if ns:
            attrs["efficiency"] = roof_ns / ns
        return Kernel(attrs, listings)

    def _twin_timings(self, op, hw, timer, shapes, stem) -> list:
        """Per phase, the timing of the op's normalized twin (placement at row 0,
        channel 0). The layers of a model repeat the same ops at other rows, so the twin
        is built once per (PU config, op, normalized attributes, shapes) and its timing
        reused; only the op's own listing, which names its rows, is built every time."""
        from speccc.targets.pim.codegen import kernel_for, normalized_attrs
        norm = normalized_attrs(op.attrs)
        key = (hw.pim.pu, op.name, repr(sorted(norm.items())), repr(shapes))
        found = self._twins.get(key)
        if found is None:
            twin = kernel_for(op.name, norm, hw, shapes, label=stem)
            found = self._twins[key] = [timer.time(prog) for _, prog in twin.phases()]
        return found

    def finish_graph(self, graph_name: str) -> Kernel:
        """Per graph: how many distinct programs the emulator timed for it."""
        total = sum(len(t.cache) for t in self.timers.values())
        new, self._timed = total - self._timed, total
        return Kernel({"timed_programs": new})


class PimEmulation:
    """Runs PIM ops through their kernels on one shared emulator holding the whole
    placement (weights are laid out on an op's first call)."""

    def __init__(self, hw, mode: str, timings: list | None = None):
        """`timings`: None runs values only; a list collects each listing's timing."""
        from speccc.targets.pim.emulator import PimEmulator
        self.hw = hw
        self.emu = PimEmulator(hw, mode=mode, timing=timings is not None, timings=timings)
        self.loaded: set = set()
        self.kernels: dict = {}

    def run(self, op, inputs, label: str):
        import numpy as np

        from speccc.targets.pim.codegen import kernel_for
        shapes = tuple(tuple(np.shape(a)) for a in inputs)
        k = self.kernels.get((id(op), shapes))
        if k is None:
            k = self.kernels[id(op), shapes] = kernel_for(op.name, op.attrs, self.hw,
                                                          list(shapes), label=label)
        outs = k.run(self.emu, list(inputs), load=id(op) not in self.loaded)
        self.loaded.add(id(op))
        return outs


class PimTarget:
    name = "pim"
    kernel_op = "pim.kernel"

    def can_lower(self, op, bindings) -> bool:
        from speccc.targets.pim.codegen import unsupported_reason
        shapes = [[dim_eval(d, bindings) for d in v.type.shape] for v in op.operands]
        return unsupported_reason(op.name, op.attrs, shapes) is None

    def cost(self, hw, op, bindings):
        from speccc.targets.pim.cost import pim_cost
        return pim_cost(hw.for_channels(op.attrs.get("pim_channels")), op, bindings)

    def place(self, module, hw, request) -> None:
        from speccc.targets.pim.placement import place_module
        place_module(module, hw, request)

    def lowering(self, hw, bindings) -> PimLowering:
        return PimLowering(hw, bindings)

    def emulator(self, hw, mode: str, timings: list | None = None) -> PimEmulation:
        return PimEmulation(hw, mode, timings)

    def time(self, kernel_op):
        return kernel_timing(kernel_op)

    def describe(self, kernel_op) -> dict:
        """Per phase (listing) its figures, and the op's placement (`pim_channels` as
        [first channel, count])."""
        a = kernel_op.attrs
        out = {"phases": [{"phase": phase, "listing": a["listings"][i],
                           **{k: a[k][i] for k in PHASE_STATS}}
                          for i, phase in enumerate(a["phases"])]}
        for k, v in a.items():
            if k.startswith("pim_") and k != "pim_channels":
                out[k] = v
        if "pim_channels" in a:
            out["pim_channels"] = [a["pim_channels"][0], len(a["pim_channels"])]
        return out
