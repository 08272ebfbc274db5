"""Linear algebra and NN ops: matmul, gemm, einsum, the softmax family, rotary embedding.
Normalizations live in norm.py.

Contractions (matmul, gemm, einsum) on floats narrower than f32 (f16, bf16, f8) accumulate
in f32 and round once, as ONNX runtimes do; integer matmuls stay in their type (wrapping).
The softmax family instead follows its ONNX function body step by step in the input type.
"""
from __future__ import annotations

import string

import numpy as np

from speccc.ir.opdefs import Attr, Cost, define, io_bytes
from speccc.ir.ops._util import broadcast_dims, matmul_cost, norm_axis
from speccc.ir.ops.reduce import acc_dtype
from speccc.ir.types import DType, TensorType, dim_add, dim_mul, dim_prod


def _same_dim(ctx, a, b, what: str) -> None:
    # Distinct symbolic dims cannot be proven equal at compile time.
    if a != b:
        ctx.fail(f"{what}: {a} vs {b}")


def _up(x: np.ndarray) -> np.ndarray:
    return x.astype(acc_dtype(x.dtype), copy=False)

# --- matmul / gemm -------------------------------------------------------------------------


def matmul_shape(ctx, a: tuple, b: tuple) -> tuple:
    """numpy.matmul result shape: 1-D operands are promoted then squeezed; batch dims
    broadcast."""
    if not a or not b:
        ctx.fail("matmul operands must have rank >= 1")
    a2 = a if len(a) >= 2 else (1,) + tuple(a)
    b2 = b if len(b) >= 2 else tuple(b) + (1,)
    _same_dim(ctx, a2[-1], b2[-2], "inner dimensions differ")
    batch = broadcast_dims(ctx, [a2[:-2], b2[:-2]])
    return tuple(batch) + (a2[-2],) * (len(a) >= 2) + (b2[-1],) * (len(b) >= 2)


def _matmul_infer(ctx):
    a, b = ctx.types
    if a.dtype != b.dtype:
        ctx.fail(f"operand types differ: {a.dtype.value} vs {b.dtype.value}")
    return [TensorType(matmul_shape(ctx, a.shape, b.shape), a.dtype)]


def _matmul_ref(ins, attrs):
    a, b = ins
    return [np.asarray(np.matmul(_up(a), _up(b))).astype(a.dtype)]


define("matmul", 2, _matmul_infer, _matmul_ref, cost=matmul_cost,
       doc="numpy.matmul: batched, broadcasting, 1-D operands promoted.")


def _gemm_infer(ctx):
    a, b = ctx.types[:2]
    if a.rank != 2 or b.rank != 2:
        ctx.fail(f"gemm operands must be 2-D, got {a} and {b}")
    m, k = (a.shape[1], a.shape[0]) if ctx.attr("trans_a") else a.shape
    kb, n = (b.shape[1], b.shape[0]) if ctx.attr("trans_b") else b.shape
    _same_dim(ctx, k, kb, "inner dimensions differ")
    if len(ctx.types) == 3:
        c = ctx.types[2]
        if c.rank > 2 or broadcast_dims(ctx, [c.shape, (m, n)]) != (m, n):
            ctx.fail(f"bias {c} does not broadcast to [{m}, {n}]")
    return [TensorType((m, n), a.dtype)]


def _gemm_ref(ins, attrs):
    a, b = _up(ins[0]), _up(ins[1])
    a = a.T if attrs["trans_a"] else a
    b = b.T if attrs["trans_b"] else b
    dt = a.dtype.type
    y = np.matmul(a, b) * dt(attrs["alpha"])
    if len(ins) == 3 and attrs["beta"] != 0:
        y = y + _up(ins[2]) * dt(attrs["beta"])
    return [y.astype(ins[0].dtype)]


def _gemm_cost(ctx, out):
    a = ctx.types[0]
    k = a.shape[0] if ctx.attr("trans_a") else a.shape[1]
    read = 0
    for t in ctx.types:
        read = dim_add(read, t.nbytes())
    return Cost(dim_mul(2, dim_mul(out[0].numel(), k)), read, out[0].nbytes())


define("gemm", (2, 3), _gemm_infer, _gemm_ref, cost=_gemm_cost,
       attrs={"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0),
              "trans_a": Attr("bool", False), "trans_b": Attr("bool", False)},
       doc="alpha * op(A) @ op(B) + beta * C (C broadcast to [M, N]); op = transpose or not.")

# --- einsum --------------------------------------------------------------------------------


def parse_einsum(equation: str, ranks: list[int]) -> tuple[list[str], str, str]:
    """Split an equation into per-input subscripts and the output subscripts, with
    '...' replaced by letters the equation does not use (one per broadcast dim,
    right-aligned); the implicit output is the ellipsis then the letters used once,
    sorted. Also returns the ellipsis letters."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"equation has {len(terms)} inputs, got {len(ranks)} operands")
    n_ell = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks) if "..." in t),
                default=0)
    free = [c for c in string.ascii_letters if c not in eq]
    ell = "".join(free[:n_ell])
    subs = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            k = r - len(t.replace("...", ""))
            t = t.replace("...", ell[n_ell - k:] if k else "")
        if len(t) != r or not all(c.isalpha() for c in t):
            raise ValueError(f"subscripts {t!r} do not match an operand of rank {r}")
        subs.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        letters = "".join(subs)
        out = ell + "".join(sorted(c for c in set(letters) if c not in ell and
                                   letters.count(c) == 1))
    return subs, out, ell


def _einsum_infer(ctx):
    try:
        subs, out, ell = parse_einsum(ctx.attr("equation"), [t.rank for t in ctx.types])
    except ValueError as e:
        ctx.fail(str(e))
    if any(t.dtype != ctx.types[0].dtype for t in ctx.types):
        ctx.fail("operand types differ")
    sizes: dict = {}
    for s, t in zip(subs, ctx.types):
        for c, d in zip(s, t.shape):
            if c in ell:  # ellipsis dims broadcast
                sizes[c] = broadcast_dims(ctx, [(sizes.get(c, 1),), (d,)])[0]
            elif sizes.setdefault(c, d) != d:
                _same_dim(ctx, sizes[c], d, f"subscript {c!r} has two sizes")
    if any(c not in sizes for c in out):
        ctx.fail(f"output subscript not in any input: {out!r}")
    return [TensorType(tuple(sizes[c] for c in out), ctx.types[0].dtype)]


def _einsum_ref(ins, attrs):
    subs, out, _ = parse_einsum(attrs["equation"], [x.ndim for x in ins])
    y = np.einsum(",".join(subs) + "->" + out, *[_up(x) for x in ins])
    return [np.asarray(y).astype(ins[0].dtype)]


def _einsum_cost(ctx, out):
    subs, _, _ = parse_einsum(ctx.attr("equation"), [t.rank for t in ctx.types])
    sizes = {c: d for s, t in zip(subs, ctx.types) for c, d in zip(s, t.shape)}
    # Every point of the full index space is visited once: a multiply-add per extra input.
    flops = dim_mul(max(2 * (len(ctx.types) - 1), 1), dim_prod(sizes.values()))
    read = 0
    for t in ctx.types:
        read = dim_add(read, t.nbytes())
    return Cost(flops, read, out[0].nbytes())


define("einsum", (1, None), _einsum_infer, _einsum_ref, cost=_einsum_cost,
       attrs={"equation": Attr("str")}, doc="Einstein summation (numpy.einsum semantics).")

# --- softmax family ------------------------------------------------------------------------


def _axis_infer(ctx):
    norm_axis(ctx, ctx.attr("axis"), ctx.types[0].rank)
    return [ctx.types[0]]


def _softmax_ref(log: bool):
    # Softmax/LogSoftmax are defined by their ONNX function bodies (ReduceMax, Sub, Exp,
    # ReduceSum, Div or Log+Sub) evaluated in the tensor type T, so each step rounds to
    # T and the sum is numpy's native reduction in T (f16: f32 pairwise; bf16: in bf16).
    # The conformance cases check bf16/f16 attention to better than one ulp of T, which
    # only this step-by-step rounding reproduces.
    def ref(ins, attrs):
        x = ins[0]
        if x.size == 0:
            return [x.copy()]
        axis = attrs["axis"] % x.ndim
        with np.errstate(all="ignore"):
            z = x - np.max(x, axis=axis, keepdims=True)
            e = np.exp(z)
            s = np.sum(e, axis=axis, keepdims=True, dtype=x.dtype)
            y = z - np.log(s) if log else e / s
        return [np.asarray(y).astype(x.dtype)]
    return ref


def _hardmax_ref(ins, attrs):
    x = ins[0]
    y = np.zeros_like(x)
    if x.size:
        axis = attrs["axis"] % x.ndim
        idx = np.expand_dims(np.argmax(x, axis=axis), axis)
        np.put_along_axis(y, idx, 1, axis=axis)
    return [y]


def pointwise_cost(flops_per_elem: int):
    def cost(ctx, out):
        return Cost(dim_mul(flops_per_elem, ctx.types[0].numel()), *io_bytes(ctx, out))
    return cost


# max, subtract, exp, sum, divide (log_softmax: log instead of the divide).
for _name, _ref in {"softmax": _softmax_ref(False), "log_softmax": _softmax_ref(True),
                    "hardmax": _hardmax_ref}.items():
    define(_name, 1, _axis_infer, _ref, attrs={"axis": Attr("int", -1)},
           cost=pointwise_cost(5 if _name != "hardmax" else 1),
           doc=f"{_name} along one axis.")

# --- rotary embedding (ONNX RotaryEmbedding) -----------------------------------------------


def _rotary_infer(ctx):
    x, cos, sin = ctx.types[:3]
    if x.rank not in (3, 4):
        ctx.fail(f"input {x} must be [B, H, S, D] or [B, S, H*D]")
    heads = ctx.attr("num_heads")
    if x.rank == 3 and heads <= 0:
        ctx.fail("num_heads is required for a 3-D input")
    if cos != sin:
        ctx.fail(f"cos {cos} and sin {sin} differ")
    want = 2 if len(ctx.types) == 4 else 3
    if cos.rank != want:
        ctx.fail(f"cos/sin caches must be {want}-D here, got {cos}")
    return [x]


def _rotary_ref(ins, attrs):
    x, cos, sin = ins[:3]
    if len(ins) == 4:  # caches are tables indexed by position: [B, S, rot/2]
        cos, sin = cos[ins[3]], sin[ins[3]]
    # Work in [B, S, H, D].
    xs = x.reshape(x.shape[0], x.shape[1], attrs["num_heads"], -1) if x.ndim == 3 \
        else np.transpose(x, (0, 2, 1, 3))
    rot = attrs["rotary_dim"] or xs.shape[-1]
    xr, rest = xs[..., :rot], xs[..., rot:]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    if attrs["interleaved"]:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., :rot // 2], xr[..., rot // 2:]
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if attrs["interleaved"]:
        xr = np.stack([real, imag], axis=-1).reshape(xr.shape)
    else:
        xr = np.concatenate([real, imag], axis=-1)
    y = np.concatenate([xr, rest], axis=-1).astype(x.dtype)
    return [y.reshape(x.shape) if x.ndim == 3 else np.ascontiguousarray(
        np.transpose(y, (0, 2, 1, 3)))]


define("rotary_embedding", (3, 4), _rotary_infer, _rotary_ref, cost=pointwise_cost(3),
       attrs={"interleaved": Attr("bool", False), "rotary_dim": Attr("int", 0),
              "num_heads": Attr("int", 0)},
       doc="ONNX RotaryEmbedding: rotate the first rotary_dim (0: all) of each head by "
           "cos/sin, halves (or interleaved pairs); caches [B, S, rot/2] or, with "
           "position_ids, a [max_pos, rot/2] table gathered by them.")

# --- dropout -------------------------------------------------------------------------------


def _dropout_ref(ins, attrs):
    x, ratio = ins[0], attrs["ratio"]
    if not attrs["training"] or ratio == 0:
        return [x.copy(), np.ones(x.shape, dtype=bool)]
    # ONNX leaves the generator unspecified; this one is numpy's, seeded by `seed`.
    rng = np.random.RandomState(attrs["seed"] if attrs["seed"] >= 0 else None)
    mask = rng.uniform(0, 1.0, x.shape) >= ratio
    return [(mask * x * (1.0 / (1.0 - ratio))).astype(x.dtype), mask]


define("dropout", 1, lambda c: [c.types[0], c.types[0].with_dtype(DType.bool)], _dropout_ref,
       attrs={"ratio": Attr("float", 0.5), "training": Attr("bool", False),
              "seed": Attr("int", -1)},
       doc="Inference: identity and an all-true mask. Training: zero elements with "
           "probability ratio, scale the rest by 1/(1-ratio); returns (y, mask).")
