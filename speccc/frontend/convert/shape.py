"""Converters for ONNX shape / data-movement ops onto speccc/ir/ops/shape.py.

Opset differences (attribute vs input for axes, split, pads...) are normalized here:
static int lists become IR attributes, possibly-symbolic shape vectors stay operands.
Flatten, DepthToSpace and SpaceToDepth are reshape/transpose compositions.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from speccc.frontend.registry import converter
from speccc.ir.types import Sym, dim_div, dim_mul, dim_prod


def static_ints(ctx, i: int, what: str) -> list[int]:
    """Input i as a list of ints (it must be a compile-time constant)."""
    arr = ctx.require_const(i, what)
    if any(isinstance(v, Sym) for v in np.asarray(arr).reshape(-1)):
        ctx.fail(f"{what} (input {i}) must be static, is symbolic")
    return [int(v) for v in np.asarray(arr).reshape(-1)]


def dims_value(ctx, dims):
    """A 1-D i64 value holding `dims` (a `sym_dims` when some are symbolic)."""
    if any(isinstance(d, Sym) for d in dims):
        return ctx.const(np.array(list(dims), dtype=object))
    return ctx.const(np.array([int(d) for d in dims], dtype=np.int64))


def axis_of(ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        ctx.fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


@converter("Shape", since=1)
def shape(ctx):
    attrs = {}
    if ctx.attr("start", 0):
        attrs["start"] = int(ctx.attr("start"))
    if ctx.has_attr("end"):
        attrs["end"] = int(ctx.attr("end"))
    return ctx.emit("shape", [ctx.input(0)], attrs)


@converter("Size", since=1)
def size(ctx):
    return ctx.emit("size", [ctx.input(0)])


@converter("Reshape", since=5)
def reshape(ctx):
    return ctx.emit("reshape", [ctx.input(0), ctx.input(1)],
                    {"allowzero": int(ctx.attr("allowzero", 0))})


@converter("Transpose", since=1)
def transpose(ctx):
    rank = ctx.input(0).type.rank
    perm = ctx.attr("perm", list(range(rank))[::-1])
    return ctx.emit("transpose", [ctx.input(0)], {"perm": [int(p) for p in perm]})


@converter("Unsqueeze", since=1)
def unsqueeze(ctx):
    axes = ctx.attr("axes") if ctx.opset < 13 else static_ints(ctx, 1, "axes")
    return ctx.emit("unsqueeze", [ctx.input(0)], {"axes": [int(a) for a in axes]})


@converter("Squeeze", since=1)
def squeeze(ctx):
    x = ctx.input(0)
    if ctx.opset < 13:
        axes = ctx.attr("axes")
    else:
        axes = static_ints(ctx, 1, "axes") if ctx.input(1) is not None else None
    if axes is None:
        # No axes: drop every dim known to be 1 (a symbolic dim is taken to be > 1).
        axes = [i for i, d in enumerate(x.type.shape) if d == 1]
    return ctx.emit("squeeze", [x], {"axes": [int(a) for a in axes]})


@converter("Concat", since=4)
def concat(ctx):
    return ctx.emit("concat", ctx.inputs, {"axis": int(ctx.attr("axis"))})


@converter("Split", since=2)
def split(ctx):
    x = ctx.input(0)
    axis = axis_of(ctx, int(ctx.attr("axis", 0)), x.type.rank)
    if ctx.opset < 13:
        sizes = ctx.attr("split")
    elif ctx.input(1) is not None:
        sizes = list(ctx.require_const(1, "split").reshape(-1))
    else:
        sizes = None
    if sizes is None and ctx.opset >= 18 and ctx.attr("num_outputs") is None:
        # opset 18 made this an error (onnxruntime refuses it); before, outputs counted
        ctx.fail("needs a `split` input or a `num_outputs` attribute (opset 18+)")
    if sizes is None:
        n = int(ctx.attr("num_outputs", len(ctx.node.output)))
        sizes = _even_split(ctx, x.type.shape[axis], n)
    return ctx.emit("split", [x, dims_value(ctx, sizes)], {"axis": axis})


def _even_split(ctx, d, n: int) -> list:
    if isinstance(d, Sym):
        q = dim_div(d, n)
        if q is None:
            ctx.fail(f"cannot split dim {d} into {n} equal parts")
        return [q] * n
    # Opset 18: chunks of ceil(d/n), the last one smaller.
    chunk = -(-d // n)
    return [chunk] * (n - 1) + [d - chunk * (n - 1)]


@converter("Expand", since=8)
def expand(ctx):
    return ctx.emit("expand", [ctx.input(0), ctx.input(1)])


@converter("ConstantOfShape", since=9)
def constant_of_shape(ctx):
    value = ctx.attr("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(1)
    return ctx.emit("constant_of_shape", [ctx.input(0)], {"value": value})


@converter("Range", since=11)
def range_(ctx):
    return ctx.emit("range", ctx.inputs[:3])


def _sparse_to_dense(sp) -> np.ndarray:
    values = numpy_helper.to_array(sp.values)
    idx = numpy_helper.to_array(sp.indices)
    dense = np.zeros(int(np.prod(list(sp.dims), dtype=np.int64)), dtype=values.dtype)
    flat = idx if idx.ndim == 1 else np.ravel_multi_index(tuple(idx.T), tuple(sp.dims))
    dense[flat] = values
    return dense.reshape(list(sp.dims))


# Constant's value_* attributes and the numpy dtype each becomes.
CONSTANT_ATTRS = {"value_float": np.float32, "value_floats": np.float32,
                  "value_int": np.int64, "value_ints": np.int64,
                  "value_string": object, "value_strings": object}


@converter("Constant", since=1)
def constant(ctx):
    if ctx.has_attr("value"):
        return [ctx.const(ctx.attr("value"))]
    if ctx.has_attr("sparse_value"):
        return [ctx.const(_sparse_to_dense(ctx.attrs["sparse_value"]))]
    for name, dt in CONSTANT_ATTRS.items():
        if ctx.has_attr(name):
            v = ctx.attrs[name]
            if dt is object:
                v = [s.decode() for s in v] if isinstance(v, list) else v.decode()
            return [ctx.const(np.array(v, dtype=dt))]
    ctx.fail("no value attribute")


@converter("Tile", since=6)
def tile(ctx):
    return ctx.emit("tile", [ctx.input(0)], {"repeats": static_ints(ctx, 1, "repeats")})


@converter("Flatten", since=1)
def flatten(ctx):
    x = ctx.input(0)
    shape, axis = x.type.shape, int(ctx.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        ctx.fail(f"axis {axis} out of range for rank {len(shape)}")
    target = [dim_prod(shape[:axis]), dim_prod(shape[axis:])]
    return ctx.emit("reshape", [x, dims_value(ctx, target)])


@converter("Pad", since=2)
def pad(ctx):
    x = ctx.input(0)
    rank, mode = x.type.rank, ctx.attr("mode", "constant")
    if ctx.opset < 11:
        pads = [int(p) for p in ctx.attr("pads")]
        value = ctx.const(np.array(ctx.attr("value", 0.0), dtype=x.type.dtype.numpy))
    else:
        pads = static_ints(ctx, 1, "pads")
        value = ctx.input(2)
        if ctx.input(3) is not None:
            # Pads given for `axes` only: spread into the full [begin..., end...] form.
            axes = [axis_of(ctx, a, rank) for a in static_ints(ctx, 3, "axes")]
            full = [0] * (2 * rank)
            for j, a in enumerate(axes):
                full[a], full[a + rank] = pads[j], pads[j + len(axes)]
            pads = full
    operands = [x] if mode != "constant" or value is None else [x, value]
    return ctx.emit("pad", operands, {"pads": pads, "mode": mode})


@converter("Trilu", since=14)
def trilu(ctx):
    k = static_ints(ctx, 1, "k")[0] if ctx.input(1) is not None else 0
    return ctx.emit("trilu", [ctx.input(0)], {"upper": int(ctx.attr("upper", 1)), "k": k})


def _blocks(ctx):
    x, b = ctx.input(0), int(ctx.attr("blocksize"))
    if x.type.rank != 4:
        ctx.fail(f"expects a rank-4 NCHW input, got {x.type}")
    return x, b, x.type.shape


def _reshape(ctx, x, dims):
    return ctx.emit1("reshape", [x, dims_value(ctx, dims)])


def _div(ctx, d, b):
    q = dim_div(d, b)
    if q is None:
        ctx.fail(f"dim {d} is not a multiple of {b}")
    return q


@converter("DepthToSpace", since=1)
def depth_to_space(ctx):
    x, b, (n, c, h, w) = _blocks(ctx)
    c2 = _div(ctx, c, b * b)
    if ctx.attr("mode", "DCR") == "DCR":
        y, perm = _reshape(ctx, x, [n, b, b, c2, h, w]), [0, 3, 4, 1, 5, 2]
    else:
        y, perm = _reshape(ctx, x, [n, c2, b, b, h, w]), [0, 1, 4, 2, 5, 3]
    y = ctx.emit1("transpose", [y], {"perm": perm})
    return [_reshape(ctx, y, [n, c2, dim_mul(h, b), dim_mul(w, b)])]


@converter("SpaceToDepth", since=1)
def space_to_depth(ctx):
    x, b, (n, c, h, w) = _blocks(ctx)
    h2, w2 = _div(ctx, h, b), _div(ctx, w, b)
    y = _reshape(ctx, x, [n, c, h2, b, w2, b])
    perm = [0, 3, 5, 1, 2, 4] if ctx.attr("mode", "DCR") == "DCR" else [0, 1, 3, 5, 2, 4]
    y = ctx.emit1("transpose", [y], {"perm": perm})
    return [_reshape(ctx, y, [n, dim_mul(c, b * b), h2, w2])]

