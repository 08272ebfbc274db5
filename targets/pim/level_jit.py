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
            _jit.append(numba.njit(cache=True, nogil=True)(_read_py))
    return _jit[0] is not None


class CompiledSteps:
    """A DataflowPlan's accumulator steps as per-value arrays for the compiled loop: each
    value's step kind, previous value and payload row (the MAC's word and global-buffer
    read, the EW operand row); spans of values between AF steps (those run in numpy)."""

    @classmethod
    def for_plan(cls, plan) -> "CompiledSteps | None":
        """None when numpy is as good (a small plan), numba is missing or the adder tree
        is not a 8..128-lane pairwise sum."""
        if plan.n_values < MIN_VALUES or (plan.tree and not 8 <= plan.lanes <= 128) \
                or not available():
            return None
        return cls(plan)

    def __init__(self, plan):
        from speccc.targets.pim.vectorised import AF, MAC as MAC_STEP
        self.plan = plan
        n = plan.n_values
        self.kind, self.prev, self.pay = (np.zeros(n, np.int64) for _ in range(3))
        self.spans: list = []     # (lo, hi, None, None) compiled | (lo, hi, fn, prev) AF
        at = {MAC_STEP: 0, EWMUL: 0, EWADD: 0}
        for lo, hi, kind, fn, before in plan.steps:
            self.kind[lo:hi], self.prev[lo:hi] = kind, before
            if kind == AF:
                self.spans.append((lo, hi, fn, before))
                continue
            src = MAC_STEP if kind == MAC_STEP else EWMUL    # EWMUL/EWADD share operands
            self.pay[lo:hi] = np.arange(at[src], at[src] + hi - lo)
            at[src] += hi - lo
            if self.spans and self.spans[-1][2] is None and self.spans[-1][1] == lo:
                self.spans[-1] = (self.spans[-1][0], hi, None, None)
            else:
                self.spans.append((lo, hi, None, None))
        self.gbi = plan.mac_gb

    def run(self, st, table, operand, vals) -> None:
        from speccc.targets.pim.functional import AF as AF_FNS
        from speccc.targets.pim.vectorised import _round_into
        plan = self.plan
        hin_at = len(plan.gb_init_keys)         # table = [gb at the start; rounded input]
        widx = (plan.mac_words.sources(st, hin_at) if len(self.gbi)
                else np.zeros(0, np.int64))
        pool = st.pool.reshape(-1, plan.lanes)
        if operand is None:
            operand = np.zeros((0, plan.acc_lanes), np.float32)
        for lo, hi, fn, before in self.spans:
            if fn is None:
                _jit[0](vals, lo, hi, self.kind, self.prev, self.pay, pool, widx, table,
                        self.gbi, operand, plan.tree, ROUNDING[st.accd])
            else:
                _round_into(st.accd, AF_FNS[fn](vals[before]), vals[lo:hi])

    @staticmethod
    def read_out(vals, at, dtype: str) -> np.ndarray:
        """functional.round_to(dtype, vals[at]), in one compiled pass."""
        out = np.empty((len(at), vals.shape[1]), np.float32)
        _jit[1](vals, at, ROUNDING[dtype], out)
        return out


def run_span(vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, tree,
             dtype) -> None:
    """vals[lo:hi] from earlier values (see module doc) with the compiled loop."""
    _jit[0](vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, tree,
            ROUNDING[dtype])


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


def _read_py(vals, at, mode, out):
    for i in range(len(at)):
        for lane in range(vals.shape[1]):
            out[i, lane] = _round(vals[at[i], lane], mode)


def _span_py(vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, tree, mode):
    """MAC words: pool row widx[j], or table row -1 - widx[j] (a word this listing wrote)."""
    lanes = vals.shape[1]
    for v in range(lo, hi):
        k, p, j = kind[v], prev[v], pay[v]
        if k == MAC:
            w = widx[j]
            row = pool[w] if w >= 0 else table[-1 - w]
            x = table[gbi[j]]
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
