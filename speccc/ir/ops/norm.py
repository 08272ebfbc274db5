"""Normalizations: layer_norm, rms_norm, batch_norm, instance_norm, group_norm, lp_norm,
mean_variance_norm.

Statistics are computed in `stash_type` where ONNX has it (f32 by default), otherwise in
f32 for narrower floats; as in the ONNX function bodies the normalized value is cast to
the input type before scale and bias apply.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import Attr, define
from speccc.ir.ops._util import broadcast_dims, norm_axis
from speccc.ir.ops.nn import pointwise_cost
from speccc.ir.ops.reduce import acc_dtype
from speccc.ir.types import DType, TensorType

_STASH = {"epsilon": Attr("float", 1e-5), "stash_type": Attr("dtype", DType.f32)}


def _trailing(ctx):
    """x and the first normalized axis; scale/bias broadcast over x.shape[axis:]."""
    x = ctx.types[0]
    axis = norm_axis(ctx, ctx.attr("axis"), x.rank)
    for t in ctx.types[1:]:
        if t.rank > x.rank - axis:
            ctx.fail(f"scale/bias {t} has more dims than the normalized part of {x}")
        broadcast_dims(ctx, [t.shape, x.shape[axis:]])
    return x, axis


def _layer_norm_infer(ctx):
    x, axis = _trailing(ctx)
    stats = TensorType(tuple(x.shape[:axis]) + (1,) * (x.rank - axis), ctx.attr("stash_type"))
    return [x, stats, stats]


def _layer_norm_ref(ins, attrs):
    x = ins[0]
    stash = attrs["stash_type"].numpy
    axes = tuple(range(attrs["axis"] % x.ndim, x.ndim))
    xs = x.astype(stash)
    mean = np.mean(xs, axis=axes, keepdims=True)
    d = xs - mean
    var = np.mean(d * d, axis=axes, keepdims=True)
    inv = (1 / np.sqrt(var + stash.type(attrs["epsilon"]))).astype(stash)
    y = (d * inv).astype(x.dtype) * ins[1]
    if len(ins) == 3:
        y = y + ins[2]
    return [y.astype(x.dtype), mean.astype(stash), inv]


define("layer_norm", (2, 3), _layer_norm_infer, _layer_norm_ref, cost=pointwise_cost(8),
       attrs={"axis": Attr("int", -1), **_STASH},
       doc="(x - mean) / sqrt(var + eps) * scale (+ bias) over axes [axis, rank); also "
           "returns mean and 1/std (in stash_type, the statistics' precision).")


def _rms_norm_ref(ins, attrs):
    x = ins[0]
    stash = attrs["stash_type"].numpy
    axes = tuple(range(attrs["axis"] % x.ndim, x.ndim))
    xs = x.astype(stash)
    ms = np.mean(xs * xs, axis=axes, keepdims=True)
    y = (xs * (1 / np.sqrt(ms + stash.type(attrs["epsilon"])))).astype(x.dtype) * ins[1]
    return [y.astype(x.dtype)]


define("rms_norm", 2, lambda ctx: [_trailing(ctx)[0]], _rms_norm_ref, cost=pointwise_cost(5),
       attrs={"axis": Attr("int", -1), **_STASH},
       doc="x / sqrt(mean(x^2) + eps) * scale over axes [axis, rank), statistics in "
           "stash_type.")

# --- channel norms ([N, C, ...] layouts) ---------------------------------------------------


def _channel_params(ctx, n_params: int):
    x = ctx.types[0]
    if x.rank < 2:
        ctx.fail(f"input {x} must be [N, C, ...]")
    for t in ctx.types[1:1 + n_params]:
        if tuple(t.shape) != (x.shape[1],):
            ctx.fail(f"per-channel parameter {t} must be [{x.shape[1]}]")
    return x


def _per_channel(p: np.ndarray, rank: int) -> np.ndarray:
    return p.reshape((-1,) + (1,) * (rank - 2))


def _normalize(x, axes, eps, dtype):
    """(x - mean) / sqrt(var + eps) over axes, computed in dtype."""
    xs = x.astype(dtype)
    mean = np.mean(xs, axis=axes, keepdims=True)
    d = xs - mean
    return d / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + dtype.type(eps))


def _batch_norm_infer(ctx):
    x = _channel_params(ctx, 4)
    stat = ctx.types[3]
    return [x, stat, stat] if ctx.attr("training") else [x]


def _batch_norm_ref(ins, attrs):
    x, scale, bias, mean, var = ins
    acc = acc_dtype(x.dtype)
    xs = x.astype(acc)
    eps = acc.type(attrs["epsilon"])
    pc = lambda p: _per_channel(p.astype(acc), x.ndim)  # noqa: E731
    if not attrs["training"]:
        y = pc(scale) * (xs - pc(mean)) / np.sqrt(pc(var) + eps) + pc(bias)
        return [y.astype(x.dtype)]
    # Training: normalize with the batch statistics, update the running ones.
    axes = tuple(i for i in range(x.ndim) if i != 1)
    bm, bv = xs.mean(axis=axes), xs.var(axis=axes)
    y = pc(scale) * (xs - pc(bm)) / np.sqrt(pc(bv) + eps) + pc(bias)
    mom = attrs["momentum"]
    return [y.astype(x.dtype), (mean * mom + bm * (1 - mom)).astype(mean.dtype),
            (var * mom + bv * (1 - mom)).astype(var.dtype)]


define("batch_norm", 5, _batch_norm_infer, _batch_norm_ref, cost=pointwise_cost(4),
       attrs={"epsilon": Attr("float", 1e-5), "momentum": Attr("float", 0.9),
              "training": Attr("bool", False)},
       doc="scale * (x - mean) / sqrt(var + eps) + bias per channel (dim 1); training "
           "uses batch statistics and also returns the updated running mean/var.")


def _instance_norm_ref(ins, attrs):
    x, scale, bias = ins
    acc = acc_dtype(x.dtype)
    y = _normalize(x, tuple(range(2, x.ndim)), attrs["epsilon"], acc)
    y = _per_channel(scale.astype(acc), x.ndim) * y + _per_channel(bias.astype(acc), x.ndim)
    return [y.astype(x.dtype)]


define("instance_norm", 3, lambda ctx: [_channel_params(ctx, 2)], _instance_norm_ref,
       cost=pointwise_cost(8), attrs={"epsilon": Attr("float", 1e-5)},
       doc="Per (sample, channel) normalization over the spatial dims, then per-channel "
           "scale and bias.")


def _group_norm_infer(ctx):
    x = _channel_params(ctx, 2)
    c, g = x.shape[1], ctx.attr("num_groups")
    if isinstance(c, int) and (g <= 0 or c % g):
        ctx.fail(f"{c} channels do not split into {g} groups")
    return [x]


def _group_norm_ref(ins, attrs):
    x, scale, bias = ins
    n, c, g = x.shape[0], x.shape[1], attrs["num_groups"]
    xg = x.reshape(n, g, -1)
    y = _normalize(xg, (2,), attrs["epsilon"], attrs["stash_type"].numpy)
    y = y.astype(x.dtype).reshape(x.shape)
    return [(y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)).astype(x.dtype)]


define("group_norm", 3, _group_norm_infer, _group_norm_ref, cost=pointwise_cost(8),
       attrs={"num_groups": Attr("int"), **_STASH},
       doc="Normalize each of num_groups channel groups per sample, then per-channel "
           "scale and bias.")


def _lp_norm_ref(ins, attrs):
    x = ins[0]
    axis = attrs["axis"] % max(x.ndim, 1)
    xs = x.astype(acc_dtype(x.dtype))
    if attrs["p"] == 1:
        norm = np.sum(np.abs(xs), axis=axis, keepdims=True)
    else:
        norm = np.sqrt(np.sum(xs * xs, axis=axis, keepdims=True))
    with np.errstate(all="ignore"):
        y = np.where(norm == 0, 0, xs / norm)  # a zero vector stays zero
    return [y.astype(x.dtype)]


def _lp_norm_infer(ctx):
    norm_axis(ctx, ctx.attr("axis"), ctx.types[0].rank)
    if ctx.attr("p") not in (1, 2):
        ctx.fail(f"p must be 1 or 2, got {ctx.attr('p')}")
    return [ctx.types[0]]


define("lp_norm", 1, _lp_norm_infer, _lp_norm_ref, cost=pointwise_cost(3),
       attrs={"axis": Attr("int", -1), "p": Attr("int", 2)},
       doc="x / ||x||_p along axis (p = 1 or 2); zero vectors map to zero.")


def _mvn_ref(ins, attrs):
    x = ins[0]
    axes = tuple(a % x.ndim for a in attrs["axes"])
    xs = x.astype(acc_dtype(x.dtype))
    mean = np.mean(xs, axis=axes, keepdims=True)
    # As the ONNX function body: sqrt(E[x^2] - E[x]^2) + 1e-9.
    std = np.sqrt(np.mean(xs * xs, axis=axes, keepdims=True) - mean * mean)
    return [((xs - mean) / (std + xs.dtype.type(1e-9))).astype(x.dtype)]


def _mvn_infer(ctx):
    for a in ctx.attr("axes"):
        norm_axis(ctx, a, ctx.types[0].rank)
    return [ctx.types[0]]


define("mean_variance_norm", 1, _mvn_infer, _mvn_ref, cost=pointwise_cost(5),
       attrs={"axes": Attr("ints", [0, 2, 3])},
       doc="(x - mean) / (std + 1e-9) over axes.")
