"""Indexing ops: slice, gather (plain, elements, nd), scatter (elements, nd), one_hot.

`slice` takes starts/ends as compile-time operands that may be symbolic: LLM exports
slice a rotary table with [P : P+T] or [0 : T], and clamp ends with INT_MAX. Under
symbols the clamping is decided where the polynomial sign is known (all coefficients
one sign, symbols being >= 0) and otherwise the bounds are taken to be in range, which
is what the exporter meant.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.ops._util import norm_axis
from speccc.ir.ops.shape import const_dims, dims_str, move_cost
from speccc.ir.types import DType, Sym, TensorType, dim_add, dim_div

# Ints at least this large mean "to the end" (INT_MAX / INT64_MAX in exported graphs).
BIG = 2**31 - 1


def selected_cost(ctx, out):
    # Only the selected rows/elements of the data are read (an embedding lookup reads T
    # rows, not the table), plus the index operands.
    read = out[0].nbytes()
    for t in ctx.types[1:]:
        read = dim_add(read, t.nbytes())
    return Cost(0, read, out[0].nbytes())


# --- slice ---------------------------------------------------------------------------------


def _sign(d) -> int | None:
    """Sign of a dim expression when decidable assuming symbols >= 0; else None."""
    if not isinstance(d, Sym):
        return (d > 0) - (d < 0)
    coefs = [c for _, c in d.terms]
    if all(c >= 0 for c in coefs):
        return 1
    if all(c <= 0 for c in coefs):
        return -1
    return None


def _clamp(v, lo, hi):
    if _sign(dim_add(v, -lo)) == -1:
        return lo
    if _sign(dim_add(v, -hi)) == 1:
        return hi
    return v


def _bound(v, d, lo, hi):
    """ONNX start/end normalization: negative counts from the end, then clamp."""
    if isinstance(v, int) and v >= BIG:
        return hi
    if isinstance(v, int) and v <= -BIG:
        return lo
    if isinstance(v, int) and v < 0:
        v = dim_add(d, v)
    return _clamp(v, lo, hi)


def _slice_len(ctx, d, s, e, k: int):
    if k == 0:
        ctx.fail("slice step is 0")
    if not any(isinstance(v, Sym) for v in (d, s, e)):
        return len(range(*slice(s, e, k).indices(d)))
    if k > 0:
        n = dim_add(_bound(e, d, 0, d), -_bound(s, d, 0, d))
    else:
        last = dim_add(d, -1)
        n = dim_add(_bound(s, d, 0, last), -_bound(e, d, -1, last))
    if _sign(n) == -1:
        return 0
    q = dim_div(n, abs(k)) if isinstance(n, Sym) else -(-n // abs(k))
    if q is None:
        ctx.fail(f"slice [{s}:{e}:{k}] of dim {d}: length is not a polynomial")
    return q


def _slice_infer(ctx):
    x = ctx.types[0]
    starts, ends = const_dims(ctx, 1, "starts"), const_dims(ctx, 2, "ends")
    axes, steps = const_dims(ctx, 3, "axes"), const_dims(ctx, 4, "steps")
    if not len(starts) == len(ends) == len(axes) == len(steps):
        ctx.fail(f"starts/ends/axes/steps lengths differ: {dims_str(starts)} "
                 f"{dims_str(ends)} {dims_str(axes)} {dims_str(steps)}")
    if any(isinstance(v, Sym) for v in axes + steps):
        ctx.fail("axes and steps must be static")
    out = list(x.shape)
    seen = set()
    for s, e, a, k in zip(starts, ends, axes, steps):
        a = norm_axis(ctx, a, x.rank)
        if a in seen:
            ctx.fail(f"axis {a} sliced twice")
        seen.add(a)
        out[a] = _slice_len(ctx, x.shape[a], s, e, k)
    return [x.with_shape(out)]


def _slice_ref(ins, attrs):
    x = ins[0]
    starts, ends, axes, steps = ([int(v) for v in np.asarray(a).reshape(-1)] for a in ins[1:])
    index = [slice(None)] * x.ndim
    for s, e, a, k in zip(starts, ends, axes, steps):
        a %= x.ndim
        start, stop, step = slice(s, e, k).indices(x.shape[a])
        # After clamping, stop -1 means "before index 0", which a Python slice spells None.
        index[a] = slice(start, stop if stop >= 0 else None, step)
    return [np.asarray(x[tuple(index)], order="C")]


define("slice", 5, _slice_infer, _slice_ref, cost=selected_cost, shape_operands=(1, 2, 3, 4),
       doc="ONNX Slice: operands x, starts, ends, axes, steps (1-D; starts/ends may be "
           "symbolic); out-of-range bounds clamp, negative ones count from the end.")

# --- gathers -------------------------------------------------------------------------------


def _check_index(ctx, i: int):
    if ctx.types[i].dtype not in (DType.i64, DType.i32):
        ctx.fail(f"indices must be i32 or i64, are {ctx.types[i]}")


def _gather_infer(ctx):
    x, idx = ctx.types
    _check_index(ctx, 1)
    a = norm_axis(ctx, ctx.attr("axis"), x.rank)
    return [x.with_shape(x.shape[:a] + idx.shape + x.shape[a + 1:])]


define("gather", 2, _gather_infer,
       lambda ins, a: [np.take(ins[0], ins[1].astype(np.int64), axis=a["axis"])],
       attrs={"axis": Attr("int", 0)}, cost=selected_cost,
       doc="Take slices along `axis` at the indices (negative count from the end).")


def _wrap(idx, dim):
    idx = idx.astype(np.int64)
    return np.where(idx < 0, idx + dim, idx)


def _gather_elements_infer(ctx):
    x, idx = ctx.types
    _check_index(ctx, 1)
    norm_axis(ctx, ctx.attr("axis"), x.rank)
    if idx.rank != x.rank:
        ctx.fail(f"indices rank {idx.rank} differs from data rank {x.rank}")
    return [x.with_shape(idx.shape)]


def _gather_elements_ref(ins, attrs):
    x, idx = ins
    axis = attrs["axis"] % x.ndim
    return [np.take_along_axis(x, _wrap(idx, x.shape[axis]), axis=axis)]


define("gather_elements", 2, _gather_elements_infer, _gather_elements_ref,
       attrs={"axis": Attr("int", 0)}, cost=selected_cost,
       doc="out[i][j] = x[idx[i][j]][j] (axis 0); indices shaped like the result.")


def _gather_nd_infer(ctx):
    x, idx = ctx.types
    _check_index(ctx, 1)
    b = ctx.attr("batch_dims")
    q = idx.shape[-1] if idx.rank else None
    if not isinstance(q, int) or not 1 <= q <= x.rank - b or b >= idx.rank:
        ctx.fail(f"bad indices {idx} for data {x} with batch_dims {b}")
    return [x.with_shape(idx.shape[:-1] + x.shape[b + q:])]


def _gather_nd_ref(ins, attrs):
    x, idx, b = ins[0], ins[1].astype(np.int64), attrs["batch_dims"]
    q = idx.shape[-1]
    batch = int(np.prod(x.shape[:b], dtype=np.int64))
    xs = x.reshape((batch,) + x.shape[b:])
    ids = idx.reshape((batch, -1, q))
    out = np.empty((batch, ids.shape[1]) + x.shape[b + q:], dtype=x.dtype)
    for i in range(batch):
        out[i] = xs[i][tuple(ids[i].T)]
    return [out.reshape(idx.shape[:-1] + x.shape[b + q:])]


define("gather_nd", 2, _gather_nd_infer, _gather_nd_ref,
       attrs={"batch_dims": Attr("int", 0)}, cost=selected_cost,
       doc="Index x by tuples in the last dim of the indices (after batch_dims).")

# --- scatters ------------------------------------------------------------------------------

REDUCTIONS = {"none": None, "add": np.add, "mul": np.multiply, "max": np.maximum,
              "min": np.minimum}


def _scatter_infer(ctx):
    x, idx, upd = ctx.types
    _check_index(ctx, 1)
    if ctx.attr("reduction") not in REDUCTIONS:
        ctx.fail(f"unknown reduction '{ctx.attr('reduction')}' (known: "
                 f"{', '.join(REDUCTIONS)})")
    if upd.dtype != x.dtype:
        ctx.fail(f"updates type {upd} differs from data {x}")
    return [x]


def _apply(out, where, upd, reduction):
    fn = REDUCTIONS[reduction]
    if fn is None:
        out[where] = upd  # duplicate indices: the last update wins, as in ONNX's reference
    else:
        fn.at(out, where, upd)
    return [out]


def _scatter_elements_ref(ins, attrs):
    x, idx, upd = ins
    axis = attrs["axis"] % x.ndim
    where = list(np.indices(idx.shape, sparse=True))
    where[axis] = _wrap(idx, x.shape[axis])
    return _apply(x.copy(), tuple(np.broadcast_arrays(*where)), upd, attrs["reduction"])


def _scatter_elements_infer(ctx):
    out = _scatter_infer(ctx)
    norm_axis(ctx, ctx.attr("axis"), ctx.types[0].rank)
    if ctx.types[1].shape != ctx.types[2].shape:
        ctx.fail(f"indices {ctx.types[1]} and updates {ctx.types[2]} differ in shape")
    return out


define("scatter_elements", 3, _scatter_elements_infer, _scatter_elements_ref,
       attrs={"axis": Attr("int", 0), "reduction": Attr("str", "none")}, cost=move_cost,
       doc="Copy of x with x[idx[i][j]][j] (axis 0) set to (or reduced with) updates.")


def _scatter_nd_ref(ins, attrs):
    x, idx, upd = ins
    q = idx.shape[-1]
    flat = idx.reshape(-1, q).astype(np.int64)
    flat = np.where(flat < 0, flat + np.array(x.shape[:q]), flat)
    return _apply(x.copy(), tuple(flat.T), upd.reshape((-1,) + x.shape[q:]),
                  attrs["reduction"])


def _scatter_nd_infer(ctx):
    out = _scatter_infer(ctx)
    x, idx, upd = ctx.types
    q = idx.shape[-1] if idx.rank else None
    if not isinstance(q, int) or q > x.rank or upd.shape != idx.shape[:-1] + x.shape[q:]:
        ctx.fail(f"updates {upd} do not match indices {idx} into {x}")
    return out


define("scatter_nd", 3, _scatter_nd_infer, _scatter_nd_ref,
       attrs={"reduction": Attr("str", "none")}, cost=move_cost,
       doc="Copy of x with the slices at index tuples set to (or reduced with) updates.")

# --- one_hot -------------------------------------------------------------------------------


def _one_hot_infer(ctx):
    idx, values = ctx.types
    if values.rank != 1 or values.shape[0] != 2:
        ctx.fail(f"values must be [off, on], is {values}")
    depth = ctx.attr("depth")
    axis = norm_axis(ctx, ctx.attr("axis"), idx.rank + 1)
    shape = list(idx.shape)
    shape.insert(axis, depth)
    return [TensorType(tuple(shape), values.dtype)]


def _one_hot_ref(ins, attrs):
    idx, values, depth = ins[0], ins[1], attrs["depth"]
    axis = attrs["axis"] % (idx.ndim + 1)
    # Indices may be float (ONNX truncates); outside [-depth, depth) give all-off rows.
    ind = idx.astype(np.int64)
    ind = np.where(ind < 0, ind + depth, ind)
    hot = np.moveaxis(ind[..., None] == np.arange(depth), -1, axis)
    return [np.where(hot, values[1], values[0]).astype(values.dtype)]


define("one_hot", 2, _one_hot_infer, _one_hot_ref,
       attrs={"depth": Attr("int"), "axis": Attr("int", -1)}, cost=move_cost,
       doc="values[1] where the index equals the position along `axis`, else values[0].")
