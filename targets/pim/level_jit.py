"""Compiled accumulator steps for the vectorised engine (optional: numba, the `[fast]` extra).

vectorised.DataflowPlan computes accumulator values level by level with numpy: a few
array operations per level, each with its own pass over memory and Python overhead.
Here the same values are computed in one compiled loop, value after value in the plan's
level order (a value's previous value always has a smaller index, so one forward pass
is a valid schedule), with exactly the numpy path's arithmetic:

- MAC, reduce="lanes": acc[l] + word[l] * gb[l], one fp32 product and one fp32 add per
  lane, then the rounding;
- MAC, reduce="tree": the lane products summed in numpy's pairwise order for a 16-lane
  row (8 partial sums, combined ((0+1)+(2+3))+((4+5)+(6+7)), then the rest in turn),
  added to the accumulator, then the rounding;
- EWMUL / EWADD: one fp32 product / sum per lane, then the rounding;
- rounding to fp16 (ties to even, overflow to inf, subnormals, NaNs quieted as numpy's
  float16 cast does) or bf16 (functional.round_to's bit formula) on the float32 bits.

AF steps (numpy's float32 exp / tanh, which a compiled libm would not match bit for
bit) stay in numpy: the plan runs the spans between them here. The numpy path stays
the fallback and, with the per-command engine, the oracle the tests compare this with
(tests/pim/test_pim_level_jit.py, every preset and precision).
"""
from __future__ import annotations

import numpy as np

# Below this many accumulator values numpy's level loop is as fast, and a process that
# only runs small listings does not pay numba's import (~0.5 s). Tests set it to 0.
MIN_VALUES = 2_000
ROUNDING = {"fp32": 0, "fp16": 1, "bf16": 2}
MAC, EWMUL, EWADD = 0, 2, 3          # vectorised.py's step kinds (AF = 1 stays in numpy)
_jit: list = []                      # [compiled span loop] once numba has been imported


def available() -> bool:
    """numba installed? Imports it (and loads or compiles the loop) on first call."""
    if not _jit:
        try:
            import numba
        except ImportError:
            _jit.append(None)
        else:
            globals()["_round"] = numba.njit(inline="always", cache=True)(_round_py)
            _jit.append(numba.njit(cache=True, nogil=True)(_span_py))
    return _jit[0] is not None


def run_span(vals, lo, hi, kind, prev, pay, words, table, gbi, operand, tree, dtype) -> None:
    """vals[lo:hi] from earlier values (see module doc); the kernel is compiled."""
    _jit[0](vals, lo, hi, kind, prev, pay, words, table, gbi,
            operand, tree, ROUNDING[dtype])


def _round_py(x, mode):
    """x (float32) rounded to the accumulator dtype (mode: ROUNDING), as float32. Bit
    operations widen to 64 bits in numba; only the low 32 are kept (np.uint32)."""
    if mode == 0 or x != x and mode == 2:        # bf16 keeps NaNs as they are
        return x
    b = np.float32(x).view(np.uint32)
    if mode == 2:                                  # bf16, as functional.round_to
        return np.uint32((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).view(np.float32)
    sign = b & 0x80000000
    a = b & 0x7FFFFFFF
    if a >= 0x7F800000:                            # inf stays; NaN quieted, 10 payload bits
        if a > 0x7F800000:
            return np.uint32(sign | 0x7FC00000 | (a & 0x007FE000)).view(np.float32)
        return x
    if a >= 0x38800000:                            # fp16 normal: 10 significand bits
        a = (a + 0x0FFF + ((a >> 13) & 1)) & 0xFFFFE000
        if a > 0x477FE000:                         # past 65504: overflow to inf
            a = 0x7F800000
        return np.uint32(sign | a).view(np.float32)
    # fp16 subnormal: a multiple of 2**-24; adding 0.5 (ulp 2**-24 in float32) rounds
    # |x| to one, ties to even, and subtracting it again is exact
    half = np.float32(0.5)
    t = (np.abs(x) + half) - half
    return np.uint32(np.float32(t).view(np.uint32) | sign).view(np.float32)


def _span_py(vals, lo, hi, kind, prev, pay, words, table, gbi, operand, tree, mode):
    lanes = vals.shape[1]
    for v in range(lo, hi):
        k, p, j = kind[v], prev[v], pay[v]
        if k == MAC:
            row, x = words[j], table[gbi[j]]
            if tree:                              # numpy's pairwise sum of the products
                n = row.shape[0]
                r0, r1, r2, r3 = row[0] * x[0], row[1] * x[1], row[2] * x[2], row[3] * x[3]
                r4, r5, r6, r7 = row[4] * x[4], row[5] * x[5], row[6] * x[6], row[7] * x[7]
                i = 8
                while i < n - n % 8:
                    r0 += row[i] * x[i]
                    r1 += row[i + 1] * x[i + 1]
                    r2 += row[i + 2] * x[i + 2]
                    r3 += row[i + 3] * x[i + 3]
                    r4 += row[i + 4] * x[i + 4]
                    r5 += row[i + 5] * x[i + 5]
                    r6 += row[i + 6] * x[i + 6]
                    r7 += row[i + 7] * x[i + 7]
                    i += 8
                s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
                while i < n:
                    s += row[i] * x[i]
                    i += 1
                vals[v, 0] = _round(vals[p, 0] + s, mode)
            else:
                for lane in range(lanes):
                    vals[v, lane] = _round(vals[p, lane] + row[lane] * x[lane], mode)
        elif k == EWMUL:
            for lane in range(lanes):
                vals[v, lane] = _round(vals[p, lane] * operand[j, lane], mode)
        else:
            for lane in range(lanes):
                vals[v, lane] = _round(vals[p, lane] + operand[j, lane], mode)


_round = _round_py
