"""Reductions (reduce_*, argmax/argmin) and scans (cumsum, cumprod, topk).

`reduce_<kind>(x, axes?)`: the optional second operand is a compile-time 1-D i64 list
of axes; absent means every axis, present-but-empty means none (numpy `axis=()`: the
elementwise part still applies, e.g. reduce_l2 gives |x|). Converters map ONNX's
attribute/input axes and `noop_with_empty_axes` onto that one form.

Floats narrower than f32 accumulate in f32 (f64 stays f64) and the result is cast back;
integers accumulate in their own type so overflow wraps as in ONNX runtimes.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.ops._util import norm_axis, static_shape
from speccc.ir.types import DType, TensorType, dim_add


def acc_dtype(dt: np.dtype) -> np.dtype:
    """Accumulation dtype: f32 for narrower floats (f16, bf16, f8), else the dtype."""
    if dt.kind in "iubO":  # O: symbolic dims while folding shape computations
        return dt
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _lowest(dt: np.dtype):
    if dt == np.bool_:
        return False
    return np.iinfo(dt).min if dt.kind in "iu" else -np.inf


def _highest(dt: np.dtype):
    if dt == np.bool_:
        return True
    return np.iinfo(dt).max if dt.kind in "iu" else np.inf


def _sum(x, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _log_sum_exp(x, axis, keepdims):
    # Shift by the finite max so large inputs do not overflow exp.
    finite = np.where(np.isinf(x), -np.inf, x)
    mx = np.max(finite, axis=axis, keepdims=True, initial=-np.inf)
    mx = np.where(np.isfinite(mx), mx, 0)
    s = np.sum(np.exp(x - mx), axis=axis, keepdims=True)
    out = np.log(s) + mx
    return out if keepdims else np.squeeze(out, axis=axis)


# name -> fn(x_in_accumulation_dtype, axis, keepdims). Empty reductions follow from the
# numpy identities (sum 0, prod 1, max/min the dtype's lowest/highest via `initial`).
REDUCTIONS = {
    "sum": _sum,
    "mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k, dtype=x.dtype),
    "max": lambda x, a, k: np.max(x, axis=a, keepdims=k, initial=_lowest(x.dtype)),
    "min": lambda x, a, k: np.min(x, axis=a, keepdims=k, initial=_highest(x.dtype)),
    "l1": lambda x, a, k: _sum(np.abs(x), a, k),
    "l2": lambda x, a, k: np.sqrt(_sum(x * x, a, k)),
    "sum_square": lambda x, a, k: _sum(x * x, a, k),
    "log_sum": lambda x, a, k: np.log(_sum(x, a, k)),
    "log_sum_exp": _log_sum_exp,
}
# Integer-only-safe kinds: the rest go through float (sqrt, log, exp).
_FLOAT_ONLY = {"l2", "log_sum", "log_sum_exp"}


def reduce_axes(ctx, rank: int) -> tuple:
    if len(ctx.types) < 2:
        return tuple(range(rank))
    axes = [norm_axis(ctx, a, rank) for a in static_shape(ctx, 1, "axes")]
    if len(set(axes)) != len(axes):
        ctx.fail(f"repeated axes {axes}")
    return tuple(sorted(axes))


def _reduce_infer(ctx):
    x = ctx.types[0]
    axes = reduce_axes(ctx, x.rank)
    keep = ctx.attr("keepdims")
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    return [TensorType(shape, x.dtype)]


def _reduce_ref(kind):
    fn = REDUCTIONS[kind]

    def ref(ins, attrs):
        x = ins[0]
        axes = tuple(range(x.ndim)) if len(ins) < 2 else \
            tuple(int(a) % max(x.ndim, 1) for a in np.asarray(ins[1]).reshape(-1))
        acc = acc_dtype(x.dtype)
        if kind in _FLOAT_ONLY and acc.kind in "iub":
            acc = np.dtype(np.float64)
        with np.errstate(all="ignore"):
            out = fn(x.astype(acc, copy=False), axes, bool(attrs["keepdims"]))
        return [np.asarray(out).astype(x.dtype)]
    return ref


def _reduce_cost(ctx, out):
    # One flop per input element (the reduction tree), plus the elementwise part.
    x = ctx.types[0]
    return Cost(x.numel(), x.nbytes(), out[0].nbytes())


for _kind in REDUCTIONS:
    define(f"reduce_{_kind}", (1, 2), _reduce_infer, _reduce_ref(_kind),
           attrs={"keepdims": Attr("bool", True)}, cost=_reduce_cost, shape_operands=(1,),
           doc=f"Reduce ({_kind}) over the constant axes operand (absent: all axes).")

# --- argmax / argmin -----------------------------------------------------------------------


def _arg_infer(ctx):
    x = ctx.types[0]
    axis = norm_axis(ctx, ctx.attr("axis"), x.rank)
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape)
                  if ctx.attr("keepdims") or i != axis)
    return [TensorType(shape, DType.i64)]


def _arg_ref(np_fn):
    def ref(ins, attrs):
        x = ins[0]
        axis = attrs["axis"] % max(x.ndim, 1)
        if attrs["select_last_index"]:
            # The first hit in the reversed axis is the last one in the original.
            idx = x.shape[axis] - 1 - np_fn(np.flip(x, axis=axis), axis=axis)
        else:
            idx = np_fn(x, axis=axis)
        if attrs["keepdims"]:
            idx = np.expand_dims(idx, axis)
        return [np.asarray(idx, dtype=np.int64)]
    return ref


for _name, _fn in {"argmax": np.argmax, "argmin": np.argmin}.items():
    define(_name, 1, _arg_infer, _arg_ref(_fn), cost=_reduce_cost,
           attrs={"axis": Attr("int", 0), "keepdims": Attr("bool", True),
                  "select_last_index": Attr("bool", False)},
           doc=f"Index (i64) of the {_name[3:]} along axis; ties: first (or last) index.")

# --- scans ---------------------------------------------------------------------------------


def _scan_ref(np_scan, identity):
    def ref(ins, attrs):
        x = ins[0]
        axis = attrs["axis"] % max(x.ndim, 1)
        acc = acc_dtype(x.dtype)
        y = np.flip(x, axis) if attrs["reverse"] else x
        out = np_scan(y.astype(acc), axis=axis, dtype=acc)
        if attrs["exclusive"] and out.shape[axis]:
            # Shift by one along axis, filling the first slot with the identity.
            pad = np.full_like(np.take(out, [0], axis=axis), identity)
            out = np.concatenate([pad, np.delete(out, -1, axis=axis)], axis=axis)
        if attrs["reverse"]:
            out = np.flip(out, axis)
        return [np.ascontiguousarray(out).astype(x.dtype)]
    return ref


def _scan_infer(ctx):
    norm_axis(ctx, ctx.attr("axis"), ctx.types[0].rank)
    return [ctx.types[0]]


for _name, (_fn, _id) in {"cumsum": (np.cumsum, 0), "cumprod": (np.cumprod, 1)}.items():
    define(_name, 1, _scan_infer, _scan_ref(_fn, _id),
           attrs={"axis": Attr("int"), "exclusive": Attr("bool", False),
                  "reverse": Attr("bool", False)},
           doc=f"Running {_name[3:]} along axis (exclusive: shifted by one; reverse: from "
               "the end).")

# --- topk ----------------------------------------------------------------------------------


def _topk_infer(ctx):
    x = ctx.types[0]
    axis = norm_axis(ctx, ctx.attr("axis"), x.rank)
    k = ctx.attr("k")
    if isinstance(x.shape[axis], int) and not 0 <= k <= x.shape[axis]:
        ctx.fail(f"k={k} out of range for axis of size {x.shape[axis]}")
    shape = tuple(k if i == axis else d for i, d in enumerate(x.shape))
    return [TensorType(shape, x.dtype), TensorType(shape, DType.i64)]


def _topk_ref(ins, attrs):
    x = ins[0]
    axis = attrs["axis"] % max(x.ndim, 1)
    # Sort by value, ties by ascending index (ONNX): lexsort keys are (tiebreak, value).
    pos = np.indices(x.shape)[axis]
    if attrs["largest"]:
        order = np.flip(np.lexsort((-pos, x), axis=axis), axis=axis)
    else:
        order = np.lexsort((pos, x), axis=axis)
    idx = np.take(order, np.arange(attrs["k"]), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


def _topk_cost(ctx, out):
    x = ctx.types[0]
    return Cost(x.numel(), x.nbytes(), dim_add(out[0].nbytes(), out[1].nbytes()))


define("topk", 1, _topk_infer, _topk_ref, cost=_topk_cost,
       attrs={"k": Attr("int"), "axis": Attr("int", -1), "largest": Attr("bool", True),
              "sorted": Attr("bool", True)},
       doc="The k largest (smallest) values along axis and their i64 indices, sorted; "
           "ties keep the lower index first.")
