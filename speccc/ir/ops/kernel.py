"""Kernel ops: an op lowered for a target (`lower-pim`, `lower-npu`).

    %7 = pim.kernel(%6, %w) {op = "linear", phases = ["gemv"],
           listings = ["pim/target.0007.linear.gemv.pim"], cycles = [2171], ns = [1736.8],
           energy_pj = [...], bytes_in = [...], bytes_out = [...], commands = [...],
           roofline_ns = 812.4, bound = "internal", efficiency = 0.4677, timing = "emulator",
           device = "pim", pim_base_row = 0, pim_channels = [...], ...} : tensor<1x1x64xf32>

A kernel op keeps the lowered op's operands, result types and attributes (`op` names it),
and adds what the target made of it: one entry per listing (phase) in `listings` (keys of
the module's listing store, `Module.listings`: the listing texts travel with the module
out of line, as weights do), `cycles`, `ns`, `energy_pj`, `bytes_in`, `bytes_out`, and
for the whole op `roofline_ns`, `bound`, `efficiency` (roofline / time) and `timing`
(how it was timed). Shape inference, reference semantics and cost are the lowered op's,
so a lowered graph still verifies and runs in the reference interpreter.
"""
from __future__ import annotations

from speccc.ir.opdefs import Attr, InferCtx, default_cost, define, lookup

KERNEL_ATTRS = {
    "op": Attr("str"),                  # the lowered op
    "listings": Attr("strs"),           # per listing: its key in Module.listings
    "phases": Attr("strs", None),       # per listing: the phase (PIM: gemv, score, ...)
    "cycles": Attr("ints"),             # per listing, in the target's clock
    "ns": Attr("floats"),
    "energy_pj": Attr("floats"),
    "bytes_in": Attr("ints"),           # over the external bus (PIM) / DRAM reads (NPU)
    "bytes_out": Attr("ints"),
    "commands": Attr("ints", None),     # PIM: commands issued per listing
    "roofline_ns": Attr("float"),       # the target's lower bound for the op
    "bound": Attr("str"),               # what limits it (internal / external / memory / ...)
    "efficiency": Attr("float", None),  # roofline_ns / total ns
    "timing": Attr("str"),              # emulator (PIM), roofline (NPU's tiled model)
}
# name -> doc of every kernel op (define_kernel_op adds to it)
KERNEL_OPS: dict[str, str] = {}


def lowered_name(op) -> str:
    """The op a kernel op lowered, else the op's own name."""
    return op.attrs["op"] if op.name in KERNEL_OPS else op.name


def lowered_attrs(attrs: dict) -> dict:
    """The lowered op's own attributes within a kernel op's."""
    return {k: v for k, v in attrs.items() if k not in KERNEL_ATTRS}


def _inner(ctx: InferCtx) -> tuple:
    od = lookup(ctx.attrs["op"], ctx.loc)
    return od, InferCtx(od.name, ctx.types, od.full_attrs(lowered_attrs(ctx.attrs)),
                        ctx.values, ctx.loc)


def _infer(ctx):
    od, inner = _inner(ctx)
    return od.infer(inner)


def _ref(ins, attrs):
    od = lookup(attrs["op"])
    return od.ref(ins, od.full_attrs(lowered_attrs(attrs)))


def _cost(ctx, out):
    od, inner = _inner(ctx)
    return od.cost(inner, out) if od.cost is not None else default_cost(inner, out)


def define_kernel_op(name: str, doc: str) -> None:
    """A target's kernel op ("gpu.kernel"): a target with lowering defines its own."""
    define(name, (0, None), _infer, _ref, attrs=KERNEL_ATTRS, cost=_cost, doc=doc, wraps="op")
    KERNEL_OPS[name] = doc


define_kernel_op("pim.kernel", "an op lowered to PIM command listings, timed by the emulator")
define_kernel_op("npu.kernel", "an op lowered to an NPU program, timed by the tiling model")
