"""Converters for ONNX indexing ops onto speccc/ir/ops/index.py."""
from __future__ import annotations

import numpy as np

from speccc.frontend.convert.shape import static_ints
from speccc.frontend.registry import converter


@converter("Slice", since=1)
def slice_v1(ctx):
    # Opset 1-9: starts/ends/axes are attributes and there are no steps.
    starts, ends = ctx.attr("starts"), ctx.attr("ends")
    axes = ctx.attr("axes", list(range(len(starts))))
    ops = [np.array(v, dtype=np.int64) for v in (starts, ends, axes, [1] * len(starts))]
    return ctx.emit("slice", [ctx.input(0)] + [ctx.const(v) for v in ops])


@converter("Slice", since=10)
def slice_v10(ctx):
    starts, ends = ctx.input(1), ctx.input(2)
    n = starts.type.shape[0] if starts.type.rank == 1 else None
    if not isinstance(n, int):
        ctx.fail(f"starts must be a static 1-D vector, is {starts.type}")
    axes = ctx.input(3) or ctx.const(np.arange(n, dtype=np.int64))
    steps = ctx.input(4) or ctx.const(np.ones(n, dtype=np.int64))
    return ctx.emit("slice", [ctx.input(0), starts, ends, axes, steps])


@converter("Gather", since=1)
def gather(ctx):
    return ctx.emit("gather", ctx.inputs[:2], {"axis": int(ctx.attr("axis", 0))})


@converter("GatherElements", since=11)
def gather_elements(ctx):
    return ctx.emit("gather_elements", ctx.inputs[:2], {"axis": int(ctx.attr("axis", 0))})


@converter("GatherND", since=11)
def gather_nd(ctx):
    return ctx.emit("gather_nd", ctx.inputs[:2],
                    {"batch_dims": int(ctx.attr("batch_dims", 0))})


@converter("Scatter", since=9)
@converter("ScatterElements", since=11)
def scatter_elements(ctx):
    return ctx.emit("scatter_elements", ctx.inputs[:3],
                    {"axis": int(ctx.attr("axis", 0)),
                     "reduction": ctx.attr("reduction", "none")})


@converter("ScatterND", since=11)
def scatter_nd(ctx):
    return ctx.emit("scatter_nd", ctx.inputs[:3], {"reduction": ctx.attr("reduction", "none")})


@converter("OneHot", since=9)
def one_hot(ctx):
    depth = ctx.require_const(1, "depth")
    # Depth may be given as a float tensor; ONNX truncates it.
    depth = int(np.asarray(depth, dtype=np.float64).reshape(-1)[0])
    return ctx.emit("one_hot", [ctx.input(0), ctx.input(2)],
                    {"depth": depth, "axis": int(ctx.attr("axis", -1))})
