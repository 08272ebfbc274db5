"""PIM code generation: each PIM-assigned op becomes one or more listings ("phases"),
with the host (NPU) work between phases; the same kernels run functionally on the
emulator (`speccc exec --on emulator`) and are timed by it (`speccc compile`).

    k = kernel_for(op.name, op.attrs, hw, operand_shapes)   # placement from op.attrs
    for phase, program in k.phases(): ...                  # listings (byte-deterministic)
    outs = k.run(emu, operand_arrays)                      # functional, through the emulator

One listing per op and phase (phases are separated by host work, so each is its own
emulator run; every listing ends with SYNC and leaves every bank closed and every
accumulator read out):

| op | phases | host between / after |
|---|---|---|
| linear, matmul (2-D weight), matmul_nbits | `gemv` | bias add |
| gated_mlp | `gate_up` (one GEMV over [gate; up] stacked, x sent once), `act` (elementwise on PIM: EWADD-load gate, AF silu/gelu, EWMUL up), `down` | none (activations other than silu / gelu-tanh: on the host) |
| attention | `score` (append the new keys, q·Kᵀ for every query head and position), `context` (append the new values, p·V); the query rows of a kv head share row visits (MACN.ab, up to token_slots) | scale, causal / window / mask, softmax |
| add, mul, relu, gelu (tanh), swish (alpha 1), swiglu (alpha 1) | `ew` | operand broadcast |

GEMVs (layout.py / gemv.py): W (M x K) zero-padded to the placement's Mp x Kp (padding
costs time, never changes y); T rows of x (prefill/verify) are `loop tok T` over the same
placement, x re-sent per row. matmul_nbits weights are dequantized at placement (banks
hold 16-bit words; the ISA has no n-bit MAC). KV cache: kv_layout.py. Elementwise: each
chunk of P*acc_lanes elements (one accumulator of every PU) is loaded from the global
buffer with EWADD into a cleared accumulator, transformed with AF/EWMUL/EWADD and read
out with RDMAC; chunks go round-robin over channels and pseudo-channels.

Why gated_mlp's activation is a separate `act` phase rather than an AF before the
gate GEMV's RDMAC: on HBM-PIM the registers hold per-lane partial sums, and on AiM/AttAcc
large GEMVs run in "tiles" order (per-tile partial sums), so the accumulator never holds
the finished gate value; and the x tiles fill the global buffer, leaving no slots for
EWMUL's second operand.

Placement attributes (passes/place.py): `pim_base_row`, `pim_rows`, `pim_channels` (the
op's channel window), `pim_max_context` (attention). An op's regions stack from
pim_base_row in `op_layouts` order; each region uses the first channels of the window
it needs (keys: the whole window).
"""
from __future__ import annotations

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.emulator import PimResult, time_program
from speccc.targets.pim.phase import phase_cost
from speccc.targets.pim.listing import Command, Loop, Program
from speccc.targets.pim.attention_kernel import AttentionKernel
from speccc.targets.pim.kernels import ElementwiseKernel, GatedMlpKernel, GemvKernel, Kernel, Work
from speccc.targets.pim.op_layout import ELEMENTWISE, op_dims, op_layouts, unsupported_reason

# Names callers take from here though they live in the modules above.
__all__ = ["AttentionKernel", "ELEMENTWISE", "GatedMlpKernel", "GemvKernel", "Timer",
           "kernel_for", "normalized_attrs", "op_dims", "op_layouts", "program_io", "roofline",
           "unsupported_reason"]


# ------------------------------------------------------------------ entry ------
def broadcast_shape(shapes: list) -> tuple:
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def kernel_for(name: str, attrs: dict, hw, shapes: list, *, label: str = "op") -> Kernel:
    """The kernel of one PIM op for concrete operand shapes; placed ops read their
    placement from attrs (pim_base_row, pim_channels, pim_max_context)."""
    shapes = [tuple(int(d) for d in s) for s in shapes]
    why = unsupported_reason(name, attrs, shapes)
    if why:
        raise SpecccError(why, location=label)
    if name in ELEMENTWISE:
        return ElementwiseKernel(hw, name, attrs, shapes, broadcast_shape(shapes), label)
    missing = [a for a in ("pim_base_row", "pim_channels") if a not in attrs]
    if missing or (name == "attention" and "pim_max_context" not in attrs):
        raise SpecccError(f"{name} assigned to PIM has no placement ({', '.join(missing) or 'pim_max_context'}"
                          " missing): run the `place` pass first", location=label)
    regions = op_layouts(name, hw, op_dims(name, attrs, shapes), base=attrs["pim_base_row"],
                         window=attrs["pim_channels"], max_context=attrs.get("pim_max_context"))
    rows = sum(r.rows for r in regions)
    if rows > attrs.get("pim_rows", rows):
        batch = (f" (batch {op_dims(name, attrs, shapes)['B']}: KV for every request)"
                 if name == "attention" else "")
        raise SpecccError(f"{name} on PIM needs {rows} rows per bank{batch}, but its placement "
                          f"holds {attrs['pim_rows']}: place it with these shapes bound",
                          location=label)
    cls = {"linear": GemvKernel, "matmul": GemvKernel, "matmul_nbits": GemvKernel,
           "gated_mlp": GatedMlpKernel,
           "attention": AttentionKernel}[name]
    return cls(hw, name, attrs, shapes, regions, label)


def normalized_attrs(attrs: dict) -> dict:
    """The same placement moved to row 0 and channel 0: timing does not depend on row
    numbers or on which channels (all channels share one refresh grid), so programs
    that differ only there time identically (compile caches on this)."""
    out = dict(attrs)
    if "pim_base_row" in out:
        out["pim_base_row"] = 0
    if "pim_channels" in out:
        out["pim_channels"] = list(range(len(out["pim_channels"])))
    return out


# ------------------------------------------------------------------ stats ------
def program_io(prog: Program, hw) -> tuple[int, int]:
    """(bytes in, bytes out) over the external bus: WR/WRGB bursts in, RD/RDMAC out."""
    p = hw.pim
    per = {"WR": (1, 0), "WRGB": (1, 0), "RD": (0, 1), "RDMAC": (0, p.rdmac_bursts)}

    def walk(body) -> tuple[int, int]:
        i = o = 0
        for node in body:
            if isinstance(node, Command):
                a, b = per.get(node.op, (0, 0))
                i, o = i + a, o + b
            elif isinstance(node, Loop):
                a, b = walk(node.body)
                i, o = i + node.count * a, o + node.count * b
        return i, o

    i, o = walk(prog.body)
    return i * p.burst_bytes, o * p.burst_bytes


def roofline(hw, work: Work) -> tuple[float, str]:
    """(ns, bound): the op's inherent bank bytes at peak internal bandwidth vs its unique
    input/output bytes at peak external bandwidth (and MACs at peak MAC rate)."""
    d = hw.derived()
    t_int = max(work.internal_bytes / d["peak_internal_gbs"],
                work.macs / d["peak_pim_macs_per_s"] * 1e9)
    t_ext = work.external_bytes / d["peak_external_gbs"]
    return (t_int, "internal") if t_int >= t_ext else (t_ext, "external")


class Timer:
    """Times kernels' phases with the emulator, caching identical (normalized) programs;
    each listing is charged as one phase of a step (phase.py: refresh debt, mode switches)."""

    def __init__(self, hw):
        self.hw = hw
        self.cache: dict[str, PimResult] = {}

    def time(self, program: Program) -> PimResult:
        from speccc.targets.pim.listing import format_program
        key = format_program(program)
        res = self.cache.get(key)
        if res is None:
            res = self.cache[key] = phase_cost(self.hw, program, time_program(program, self.hw))
        return res
