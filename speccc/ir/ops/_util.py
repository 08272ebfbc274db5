"""Shared inference helpers for op groups: broadcasting, axes, result-type builders."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from speccc.errors import NotConstantError
from speccc.ir.opdefs import Cost, InferCtx
from speccc.ir.types import DType, Sym, TensorType, dim_add, dim_mul


def broadcast_dims(ctx: InferCtx, shapes: Sequence[tuple]) -> tuple:
    """Numpy broadcasting over dims that may be symbolic."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dim = 1
        for s in shapes:
            j = i - (rank - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if dim == 1 or dim == d:
                dim = d
            elif isinstance(dim, Sym) or isinstance(d, Sym):
                # T vs 5 (or T vs P) is only legal when they are equal at bind time.
                ctx.fail(f"cannot broadcast dimension {dim} with {d} "
                         "(bind the symbols or make them equal)")
            else:
                ctx.fail(f"cannot broadcast shapes {[list(map(str, x)) for x in shapes]}")
        out.append(dim)
    return tuple(out)


def norm_axis(ctx: InferCtx, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        ctx.fail(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


def same_as(i: int = 0):
    return lambda ctx: [ctx.types[i]]


def with_dtype(dtype: DType, i: int = 0):
    return lambda ctx: [ctx.types[i].with_dtype(dtype)]


def static_shape(ctx: InferCtx, i: int, what: str) -> tuple:
    """Operand i's value as a tuple of ints; it must be a compile-time constant."""
    v = ctx.const(i)
    if v is None:
        ctx.fail(f"{what} (operand {i}) must be a constant; run 'fold' or bind the inputs",
                 NotConstantError)
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


def matmul_cost(ctx: InferCtx, out: list[TensorType]) -> Cost:
    a, b = ctx.types[0], ctx.types[1]
    k = a.shape[-1] if a.rank else 1
    flops = dim_mul(2, dim_mul(out[0].numel(), k))
    read = dim_add(a.nbytes(), b.nbytes())
    for t in ctx.types[2:]:
        read = dim_add(read, t.nbytes())
    return Cost(flops, read, out[0].nbytes())


def matmul_one_matrix(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """np.matmul(x, w) for a 2-D `w`. When x is one matrix (its leading dims all 1) and
    both are f32, one 2-D np.dot: the same BLAS product, but np.matmul copies a transposed
    (F-ordered) `w` on every call first, 7x the product's time for a decode-size linear
    with an [N, K] weight. Other cases keep np.matmul (a stack of matrices can round
    differently as one product over all rows)."""
    k = x.shape[-1] if x.ndim else 0
    if x.ndim >= 2 and k and x.size == x.shape[-2] * k and x.dtype == w.dtype == np.float32:
        y = np.dot(x.reshape(-1, k), w)
        y.shape = x.shape[:-1] + (w.shape[1],)
        return y
    return np.matmul(x, w)
