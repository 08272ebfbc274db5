"""Compiled kernels for repeated runs of the reference executor (op `prepare` hooks).

A norm over a short last axis is a dozen numpy calls on [rows, 1] statistics, each
~0.6 us of call overhead for a few hundred flops: 7 us a layernorm on gpt2-tiny. These
kernels do the same float32 operations in the same order in one call (~1 us), so the
results are bit-identical to the numpy references (`_layernorm_ref`, `_rmsnorm_ref`,
`_attention_ref`'s softmax, `_gelu_ref`'s tanh form):

- sums follow numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src):
  fewer than 8 terms sequentially from 0; up to PW_BLOCKSIZE = 128 terms with eight
  strided accumulators combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the tail in
  order. Longer rows split recursively there; here they are not handled (the callers
  keep numpy), so there is no recursion to get wrong;
- +, -, *, / and sqrt are correctly rounded in float32 without fast-math (no fused
  multiply-add, no reassociation), as numpy's loops are;
- transcendentals stay numpy's own (attention's exp and GELU's tanh run between two
  compiled passes): numpy's SIMD exp and tanh are not libm's, so compiling them would
  change bits.

numba is the optional `[fast]` extra and importing it costs ~0.25 s (compiling the
kernels the very first time ~1 s each, then cached on disk), so they are built only
when a Plan prepares its second run (a one-shot run never pays; hooks in prepared.py),
and only when numba is installed; `kernels()` is None otherwise and the numpy
references run.
tests/test_interpreter_prepared.py checks them bit for bit against the references.
"""
from __future__ import annotations

import functools

import numpy as np

PAIRWISE_BLOCK = 128     # numpy's PW_BLOCKSIZE: rows up to this long sum in one block
f32 = np.float32


def _pairwise_sum_py(a, n):
    if n < 8:
        res = f32(0.0)
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
    r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
    i = 8
    while i < n - (n % 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


_pairwise_sum = _pairwise_sum_py     # the compiled helper once kernels() has built it


def _layernorm_py(x2, scale, bias, eps, has_bias):
    """x2 [rows, n] f32 -> ((x - mean) / sqrt(var + eps)) * scale (+ bias), fresh."""
    rows, n = x2.shape
    nf = f32(n)
    out = np.empty((rows, n), np.float32)
    d = np.empty(n, np.float32)
    sq = np.empty(n, np.float32)
    for r in range(rows):
        row = x2[r]
        mean = _pairwise_sum(row, n) / nf
        for i in range(n):
            d[i] = row[i] - mean
            sq[i] = d[i] * d[i]
        std = np.sqrt(_pairwise_sum(sq, n) / nf + eps)
        for i in range(n):
            out[r, i] = (d[i] / std) * scale[i]
        if has_bias:
            for i in range(n):
                out[r, i] = out[r, i] + bias[i]
    return out


def _rmsnorm_py(x2, scale, eps):
    """x2 [rows, n] f32 -> (x * (1 / sqrt(mean(x^2) + eps))) * scale, fresh."""
    rows, n = x2.shape
    nf = f32(n)
    out = np.empty((rows, n), np.float32)
    sq = np.empty(n, np.float32)
    for r in range(rows):
        row = x2[r]
        for i in range(n):
            sq[i] = row[i] * row[i]
        inv = f32(1.0) / np.sqrt(_pairwise_sum(sq, n) / nf + eps)
        for i in range(n):
            out[r, i] = (row[i] * inv) * scale[i]
    return out


def _softmax_shift_py(rows, scale, masked, causal, t):
    """Attention score rows [.., S] in place: s *= scale; s = -inf where the causal mask
    hides it (row r is query r % t); s -= the row's max (NaN if any is, as
    np.maximum.reduce)."""
    n_rows, n = rows.shape
    for r in range(n_rows):
        row = rows[r]
        for i in range(n):
            row[i] = row[i] * scale
        if causal:
            hide = masked[r % t]
            for i in range(n):
                if hide[i]:
                    row[i] = -np.inf
        top = row[0]
        for i in range(1, n):
            v = row[i]
            if v > top or v != v:
                top = v
        for i in range(n):
            row[i] = row[i] - top


def _softmax_normalize_py(rows):
    """rows /= their pairwise sums, in place (rows no longer than PAIRWISE_BLOCK)."""
    n_rows, n = rows.shape
    for r in range(n_rows):
        row = rows[r]
        total = _pairwise_sum(row, n)
        for i in range(n):
            row[i] = row[i] / total


def _gelu_tanh_inner_py(x, c, k):
    """x flat f32 -> (((x * x) * x) * k + x) * c, fresh (np.tanh's argument)."""
    out = np.empty_like(x)
    for i in range(x.size):
        v = x[i]
        out[i] = (((v * v) * v) * k + v) * c
    return out


def _gelu_tanh_outer_py(x, t, half):
    """t <- (half * x) * (t + 1), in place (t is the inner pass's fresh array)."""
    for i in range(x.size):
        t[i] = (half * x[i]) * (t[i] + f32(1.0))
    return t


KERNELS = ("layernorm", "rmsnorm", "softmax_shift", "softmax_normalize",
           "gelu_tanh_inner", "gelu_tanh_outer")


@functools.lru_cache(maxsize=1)
def kernels() -> dict | None:
    """Compiled functions by name (KERNELS), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    g = globals()          # the compiled kernels call the compiled helper
    g["_pairwise_sum"] = numba.njit(inline="always", cache=True)(_pairwise_sum_py)
    njit = numba.njit(cache=True, fastmath=False)
    return {name: njit(g[f"_{name}_py"]) for name in KERNELS}
