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

# Below this many accumulator values numpy's level loop is as fast. Tests set it to 0.
MIN_VALUES = 500
# Loading numba and the cached loops takes ~0.45 s (compiling them the very first time
# ~2 s, then cached on disk), the numpy loop ~10 ns per accumulator lane: a plan's first
# run stays in numpy unless it is this big or numba is already loaded, so a one-shot
# `speccc exec` on a small model does not pay the load; repeated runs (a session) use
# the compiled loop from the second run on.
FIRST_RUN_LANE_VALUES = 32_000_000
ROUNDING = {"fp32": 0, "fp16": 1, "bf16": 2}
MAC, EWMUL, EWADD = 0, 2, 3          # vectorised.py's step kinds (AF = 1 stays in numpy)
_jit: list = []                      # [compiled span loop] once numba has been imported


def available() -> bool:
    """numba installed? Imports it (and loads or compiles the loop) on first call."""
    if not _jit:
        from speccc.targets.pim.optional_numba import load_numba
        numba = load_numba()
        if numba is None:
            _jit.append(None)
        else:
            inline = numba.njit(inline="always", cache=True)
            g = globals()          # the compiled loops call the compiled helpers
            for name in ("_fp16", "_bf16", "_round"):
                g[name] = inline(g[name + "_py"])
            njit = numba.njit(cache=True, nogil=True)
            _jit.append({False: njit(_lanes_py), True: njit(_tree_py), "read": njit(_read_py)})
    return _jit[0] is not None


class CompiledSteps:
    """A DataflowPlan's accumulator steps as per-value arrays for the compiled loop: each
    value's step kind, previous value and payload row (the MAC's word and global-buffer
    read, the EW operand row); spans of values between AF steps (those run in numpy)."""

    @classmethod
    def for_plan(cls, plan, runs: int) -> "CompiledSteps | bool | None":
        """The compiled steps of `plan`, which has run `runs` times; False (numpy, for
        good) when numpy is as fast (a small plan), numba is missing or the adder tree
        is not an 8..128-lane pairwise sum; None (numpy this time, ask again) on a first
        run that would not repay loading numba (FIRST_RUN_LANE_VALUES)."""
        if plan.n_values < MIN_VALUES or (plan.tree and not 8 <= plan.lanes <= 128):
            return False
        if not runs and not _jit and plan.n_values * plan.acc_lanes < FIRST_RUN_LANE_VALUES:
            return None
        return cls(plan) if available() else False

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
        from speccc.targets.pim.word_reads import round_into
        plan = self.plan
        hin_at = len(plan.gb_init_keys)         # table = [gb at the start; rounded input]
        widx = (plan.mac_words.sources(st, hin_at) if len(self.gbi)
                else np.zeros(0, np.int64))
        pool = st.pool.reshape(-1, plan.lanes)
        if operand is None:
            operand = np.zeros((0, plan.acc_lanes), np.float32)
        for lo, hi, fn, before in self.spans:
            if fn is None:
                _jit[0][plan.tree](vals, lo, hi, self.kind, self.prev, self.pay, pool, widx,
                                   table, self.gbi, operand, ROUNDING[st.accd])
            else:
                round_into(st.accd, AF_FNS[fn](vals[before]), vals[lo:hi])

    @staticmethod
    def read_out(vals, at, dtype: str) -> np.ndarray:
        """functional.round_to(dtype, vals[at]), in one compiled pass."""
        out = np.empty((len(at), vals.shape[1]), np.float32)
        _jit[0]["read"](vals, at, ROUNDING[dtype], out)
        return out


def run_span(vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, tree,
             dtype) -> None:
    """vals[lo:hi] from earlier values (see module doc) with the compiled loop."""
    _jit[0][tree](vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand,
                  ROUNDING[dtype])


def _fp16_py(x):
    """float32 x rounded to fp16 (ties to even), as float32: selects, not branches, so
    the lane loops vectorise. Bit operations widen to 64 bits in numba; np.uint32 keeps
    the low 32."""
    b = np.float32(x).view(np.uint32)
    sign = b & 0x80000000
    a = b & 0x7FFFFFFF
    # fp16 normal: 10 significand bits; past 65504 it overflows to inf
    normal = (a + 0x0FFF + ((a >> 13) & 1)) & 0xFFFFE000
    normal = np.uint32(0x7F800000) if normal > 0x477FE000 else np.uint32(normal)
    # fp16 subnormal: a multiple of 2**-24; adding 0.5 (ulp 2**-24 in float32) rounds
    # |x| to one, ties to even, and subtracting it again is exact
    half = np.float32(0.5)
    tiny = np.float32((np.abs(x) + half) - half).view(np.uint32)
    # inf stays; a NaN is quieted and keeps 10 payload bits
    special = np.uint32(0x7FC00000 | (a & 0x007FE000)) if a > 0x7F800000 else np.uint32(a)
    r = special if a >= 0x7F800000 else (normal if a >= 0x38800000 else tiny)
    return np.uint32(r | sign).view(np.float32)


def _bf16_py(x):
    """float32 x rounded to bf16 as functional.round_to does (NaNs kept as they are)."""
    b = np.float32(x).view(np.uint32)
    r = np.uint32((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).view(np.float32)
    return x if x != x else r


def _round_py(x, mode):
    """x rounded to ROUNDING `mode` (scalar: tree registers)."""
    if mode == 1:
        return _fp16(x)
    return _bf16(x) if mode == 2 else x


def _read_py(vals, at, mode, out):
    for i in range(len(at)):
        a = at[i]
        if mode == 1:
            for lane in range(vals.shape[1]):
                out[i, lane] = _fp16(vals[a, lane])
        elif mode == 2:
            for lane in range(vals.shape[1]):
                out[i, lane] = _bf16(vals[a, lane])
        else:
            for lane in range(vals.shape[1]):
                out[i, lane] = vals[a, lane]


def _lanes_py(vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, mode):
    """reduce = "lanes". MAC words: pool row w = widx[j], or table row -1 - w (a word
    this listing wrote). Plain 2-D indexing, no helper taking arrays and one lane loop
    per rounding: what numba turns into the tightest loops (array views, array
    arguments to inlined helpers or the tree's sum in the same loop cost 2-20x)."""
    lanes = vals.shape[1]
    for v in range(lo, hi):
        k, j, p = kind[v], pay[v], prev[v]
        if k == MAC:
            w, g = widx[j], gbi[j]
            if w >= 0:               # the word's row: pool row w, else table row -1 - w
                words, r = pool, w
            else:
                words, r = table, -1 - w
            if mode == 1:
                for lane in range(lanes):
                    vals[v, lane] = _fp16(vals[p, lane] + words[r, lane] * table[g, lane])
            elif mode == 2:
                for lane in range(lanes):
                    vals[v, lane] = _bf16(vals[p, lane] + words[r, lane] * table[g, lane])
            else:
                for lane in range(lanes):
                    vals[v, lane] = vals[p, lane] + words[r, lane] * table[g, lane]
        else:
            mul = k == EWMUL
            for lane in range(vals.shape[1]):
                x = vals[p, lane] * operand[j, lane] if mul else vals[p, lane] + operand[j, lane]
                vals[v, lane] = _round(x, mode)


def _tree_py(vals, lo, hi, kind, prev, pay, pool, widx, table, gbi, operand, mode):
    """reduce = "tree": numpy's pairwise sum of a MAC's lane products into one lane."""
    n = pool.shape[1]
    for v in range(lo, hi):
        k, j, p = kind[v], pay[v], prev[v]
        if k != MAC:
            mul = k == EWMUL
            for lane in range(vals.shape[1]):
                x = vals[p, lane] * operand[j, lane] if mul else vals[p, lane] + operand[j, lane]
                vals[v, lane] = _round(x, mode)
            continue
        w, g = widx[j], gbi[j]
        r0 = (pool[w, 0] if w >= 0 else table[-1 - w, 0]) * table[g, 0]
        r1 = (pool[w, 1] if w >= 0 else table[-1 - w, 1]) * table[g, 1]
        r2 = (pool[w, 2] if w >= 0 else table[-1 - w, 2]) * table[g, 2]
        r3 = (pool[w, 3] if w >= 0 else table[-1 - w, 3]) * table[g, 3]
        r4 = (pool[w, 4] if w >= 0 else table[-1 - w, 4]) * table[g, 4]
        r5 = (pool[w, 5] if w >= 0 else table[-1 - w, 5]) * table[g, 5]
        r6 = (pool[w, 6] if w >= 0 else table[-1 - w, 6]) * table[g, 6]
        r7 = (pool[w, 7] if w >= 0 else table[-1 - w, 7]) * table[g, 7]
        i = 8
        while i < n - n % 8:
            r0 += (pool[w, i] if w >= 0 else table[-1 - w, i]) * table[g, i]
            r1 += (pool[w, i + 1] if w >= 0 else table[-1 - w, i + 1]) * table[g, i + 1]
            r2 += (pool[w, i + 2] if w >= 0 else table[-1 - w, i + 2]) * table[g, i + 2]
            r3 += (pool[w, i + 3] if w >= 0 else table[-1 - w, i + 3]) * table[g, i + 3]
            r4 += (pool[w, i + 4] if w >= 0 else table[-1 - w, i + 4]) * table[g, i + 4]
            r5 += (pool[w, i + 5] if w >= 0 else table[-1 - w, i + 5]) * table[g, i + 5]
            r6 += (pool[w, i + 6] if w >= 0 else table[-1 - w, i + 6]) * table[g, i + 6]
            r7 += (pool[w, i + 7] if w >= 0 else table[-1 - w, i + 7]) * table[g, i + 7]
            i += 8
        s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            s += (pool[w, i] if w >= 0 else table[-1 - w, i]) * table[g, i]
            i += 1
        vals[v, 0] = _round(vals[p, 0] + s, mode)


_round, _fp16, _bf16 = _round_py, _fp16_py, _bf16_py
