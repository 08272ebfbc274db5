"""Compiled kernels for repeated runs of the reference executor (op `prepare` hooks).

Norms:
A norm over a short last axis is a dozen numpy calls on [rows, 1] statistics, each
~0.6 us of call overhead for a few hundred flops: 7 us a layernorm on gpt2-tiny. These
kernels do the same float32 operations in the same order in one call (~1 us), so the
results are bit-identical to `_layernorm_ref` / `_rmsnorm_ref`:

- sums follow numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src):
  fewer than 8 terms sequentially from 0; up to PW_BLOCKSIZE = 128 terms with eight
  strided accumulators combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the tail in
  order. Longer rows split recursively there; here they are not handled (the caller
  keeps numpy), so there is no recursion to get wrong;
- +, -, *, / and sqrt are correctly rounded in float32 without fast-math (no fused
  multiply-add, no reassociation), as numpy's loops are.

Attention's softmax: the scale/mask/max-shift pass and the normalising pass, with
numpy's exp between them. tanh-GELU: the polynomial before np.tanh and the scaling after it, each one pass in
the reference's order (transcendentals stay numpy's own: numpy's SIMD tanh and exp are
not libm's, so compiling them would change bits).

numba is the optional `[fast]` extra and importing it costs ~0.5 s, so the kernels are
built only when a Plan prepares its second run (a one-shot run never pays), and only
when numba is installed; `kernels()` is None otherwise and the numpy references run.
tests/test_interpreter_prepared.py checks them bit for bit against the references.
"""
from __future__ import annotations

import functools

PAIRWISE_BLOCK = 128     # numpy's PW_BLOCKSIZE: rows up to this long sum in one block


@functools.lru_cache(maxsize=1)
def kernels():
    """Compiled functions by name, or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    import numpy as np

    f32 = np.float32

    @numba.njit(inline="always")
    def pairwise_sum(a, n):
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

    @numba.njit(fastmath=False)
    def layernorm(x2, scale, bias, eps):
        """x2 [rows, n] f32 -> ((x - mean) / sqrt(var + eps)) * scale + bias."""
        rows, n = x2.shape
        nf = f32(n)
        out = np.empty((rows, n), np.float32)
        d = np.empty(n, np.float32)
        sq = np.empty(n, np.float32)
        for r in range(rows):
            row = x2[r]
            mean = pairwise_sum(row, n) / nf
            for i in range(n):
                d[i] = row[i] - mean
                sq[i] = d[i] * d[i]
            std = np.sqrt(pairwise_sum(sq, n) / nf + eps)
            for i in range(n):
                out[r, i] = (d[i] / std) * scale[i] + bias[i]
        return out

    @numba.njit(fastmath=False)
    def layernorm_nobias(x2, scale, eps):
        rows, n = x2.shape
        nf = f32(n)
        out = np.empty((rows, n), np.float32)
        d = np.empty(n, np.float32)
        sq = np.empty(n, np.float32)
        for r in range(rows):
            row = x2[r]
            mean = pairwise_sum(row, n) / nf
            for i in range(n):
                d[i] = row[i] - mean
                sq[i] = d[i] * d[i]
            std = np.sqrt(pairwise_sum(sq, n) / nf + eps)
            for i in range(n):
                out[r, i] = (d[i] / std) * scale[i]
        return out

    @numba.njit(fastmath=False)
    def rmsnorm(x2, scale, eps):
        """x2 [rows, n] f32 -> (x * (1 / sqrt(mean(x^2) + eps))) * scale."""
        rows, n = x2.shape
        nf = f32(n)
        out = np.empty((rows, n), np.float32)
        sq = np.empty(n, np.float32)
        for r in range(rows):
            row = x2[r]
            for i in range(n):
                sq[i] = row[i] * row[i]
            inv = f32(1.0) / np.sqrt(pairwise_sum(sq, n) / nf + eps)
            for i in range(n):
                out[r, i] = (row[i] * inv) * scale[i]
        return out

    @numba.njit(fastmath=False)
    def gelu_tanh_inner(x, c, k):
        """x flat f32 -> (((x * x) * x) * k + x) * c, a fresh array."""
        out = np.empty_like(x)
        for i in range(x.size):
            v = x[i]
            out[i] = (((v * v) * v) * k + v) * c
        return out

    @numba.njit(fastmath=False)
    def gelu_tanh_outer(x, t, half):
        """t <- (half * x) * (t + 1), in place (t is the kernel's own temporary)."""
        for i in range(x.size):
            t[i] = (half * x[i]) * (t[i] + f32(1.0))
        return t

    @numba.njit(fastmath=False)
    def softmax_shift(rows, scale, masked, causal, t):
        """Attention scores [.., S] rows in place: s *= scale; s = -inf where the causal
        mask (row r is query r % t) hides it; s -= the row's max (NaN if any is NaN, as
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

    @numba.njit(fastmath=False)
    def softmax_normalize(rows):
        """rows /= their pairwise sums, in place (rows no longer than PAIRWISE_BLOCK)."""
        n_rows, n = rows.shape
        for r in range(n_rows):
            row = rows[r]
            total = pairwise_sum(row, n)
            for i in range(n):
                row[i] = row[i] / total

    return {"layernorm": layernorm, "layernorm_nobias": layernorm_nobias,
            "rmsnorm": rmsnorm, "gelu_tanh_inner": gelu_tanh_inner,
            "gelu_tanh_outer": gelu_tanh_outer, "softmax_shift": softmax_shift,
            "softmax_normalize": softmax_normalize}
