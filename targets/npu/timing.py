"""NPU timing and energy: systolic arrays, SRAM tiling and reuse, external bandwidth.

The machine (from the hardware description's [npu] and [energy]):
- `pes` weight-stationary systolic arrays of R x C PEs at `clock_mhz`. A MATMUL tile
  (tm x tk) @ (tk x tn) is cut into ceil(tk/R) * ceil(tn/C) array blocks dealt to the
  arrays; each block shifts its R x C weights in (R cycles, double-buffered behind the
  previous block) and streams tm rows of A through, so a block costs max(tm, R) cycles;
  back-to-back MATMULs keep the pipeline full, so the fill/drain of R + C - 1 cycles is
  paid once, at the end of a GEMM stage. A GEMV (tm = 1) is therefore bounded by weight
  loading (C MACs per cycle per array), not by R x C.
- a vector unit of `vector_alus` ALUs (one elementwise op each per clock).
- SRAM of `sram_bytes`; a tiling must fit its double-buffered A and W tiles, the fp32
  accumulator tile and the double-buffered output tile (loop order `stream`), or keep a
  whole A row-panel (`a-panel`: A read once, W re-read per row tile) or the whole W
  (`w-resident`: W read once) on chip.
- DMA over `ext_bandwidth_gbs` (times `bw_share`: the NPU's share of the DRAM channels,
  which it shares with PIM work), in program order: loads of tile i+1 and the store of
  tile i-1 overlap the MATMUL of tile i (double buffering), so a loop of n tiles takes
      l_0 + sum_i max(c_i, s_(i-1) + l_(i+1)) + s_(n-1)
  which is never below sum(c) (the arrays' bound) nor below sum(l + s) / (the bandwidth
  bound). A kernel pays one unloaded DRAM access latency (tRP + tRCD + CL) first.
Energy: MACs x npu_mac_pj + vector ops x npu_vector_op_pj + SRAM bytes x 8 x
npu_sram_pj_per_bit + DRAM bytes x 8 x (external_pj_per_bit + act_pj / row bits) (the
row activation shared by the bits of one streamed row).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.npu.kernels import ACC_BYTES, Gemm, Kernel, Vector

MAX_ITERS = 200_000      # tilings with more tile iterations are not considered


@dataclass(frozen=True)
class Tiling:
    tm: int
    tk: int
    tn: int
    order: str           # "stream", "a-panel" or "w-resident"


@dataclass(frozen=True)
class VecTiling:
    rows: int            # rows per tile
    tiles: int


@dataclass(frozen=True)
class StageTime:
    ns: float
    compute_ns: float
    dma_ns: float
    dram_bytes: float
    sram_bytes: float
    macs: int
    vec_ops: int
    energy_pj: float
    tiling: object
    sram_used: float


@dataclass(frozen=True)
class KernelTime:
    stages: tuple
    ns: float
    energy_pj: float
    dram_bytes: float
    latency_ns: float    # the first DRAM access

    @property
    def compute_ns(self) -> float:
        return sum(s.compute_ns for s in self.stages)

    @property
    def dma_ns(self) -> float:
        return sum(s.dma_ns for s in self.stages)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_ns >= self.dma_ns else "memory"


def pipeline(l: np.ndarray, c: np.ndarray, s: np.ndarray) -> float:
    """Double-buffered loop: loads l, computes c, stores s (ns per tile iteration)."""
    nxt = np.append(l[1:], 0.0)
    prv = np.insert(s[:-1], 0, 0.0)
    return float(l[0] + np.maximum(c, prv + nxt).sum() + s[-1])


class NpuModel:
    def __init__(self, hw, bw_share: float = 1.0):
        if not 0 < bw_share <= 1:
            raise ValueError(f"bw_share must be in (0, 1], got {bw_share}")
        n, e, t = hw.npu, hw.energy, hw.pim.timing
        self.hw, self.bw_share = hw, bw_share
        self.R, self.C, self.pes = n.array_rows, n.array_cols, n.pes
        self.ghz = n.clock_mhz / 1000.0
        self.bw = n.ext_bandwidth_gbs * bw_share                 # bytes per ns
        self.sram = n.sram_bytes
        self.alus = n.vector_alus
        self.dram_latency_ns = (t.tRP + t.tRCD + t.CL) * t.tCK_ns
        self.dram_pj_bit = e.external_pj_per_bit + e.act_pj / (hw.pim.row_bytes * 8)
        self.peak_macs_per_ns = self.pes * self.R * self.C * self.ghz

    # ---- systolic arrays ----
    def mm_cycles(self, tm, tk, tn):
        """Cycles of one MATMUL tile (numpy-vectorized over tile sizes)."""
        blocks = np.ceil(np.ceil(tk / self.R) * np.ceil(tn / self.C) / self.pes)
        return blocks * np.maximum(tm, self.R)

    @property
    def fill_drain(self) -> int:
        return self.R + self.C - 1

    def _energy(self, dram, sram, macs, ops) -> float:
        e = self.hw.energy
        return (dram * 8 * self.dram_pj_bit + sram * 8 * e.npu_sram_pj_per_bit
                + macs * e.npu_mac_pj + ops * e.npu_vector_op_pj)

    # ---- GEMM ----
    def sram_need(self, g: Gemm, t: Tiling) -> float:
        acc = t.tm * t.tn * ACC_BYTES
        out = 2 * t.tm * t.tn * g.ec if g.c_out == "dram" else g.batch * g.m * g.n * g.ec
        a = 0.0 if g.a_in == "sram" else (2 * t.tm * g.k * g.ea if t.order == "a-panel"
                                          else 2 * t.tm * t.tk * g.ea)
        a_res = g.batch * g.m * g.k * g.ea if g.a_in == "sram" else 0.0
        w = 0.0 if g.w_in == "sram" else (g.k * g.n * g.ew if t.order == "w-resident"
                                          else 2 * t.tk * t.tn * g.ew)
        w_res = g.batch * g.k * g.n * g.ew if g.w_in == "sram" else 0.0
        return acc + out + a + a_res + w + w_res

    def gemm_eval(self, g: Gemm, t: Tiling) -> StageTime | None:
        need = self.sram_need(g, t)
        if need > self.sram:
            return None
        Mt, Kt, Nt = (math.ceil(g.m / t.tm), math.ceil(g.k / t.tk), math.ceil(g.n / t.tn))
        if g.batch * Mt * Nt * Kt > MAX_ITERS:
            return None

        def sizes(total, tile, count):
            s = np.full(count, tile, dtype=np.float64)
            s[-1] = total - tile * (count - 1)
            return s
        _, mi, ni, ki = (a.ravel() for a in np.meshgrid(
            np.arange(g.batch), np.arange(Mt), np.arange(Nt), np.arange(Kt), indexing="ij"))
        mm, nn, kk = sizes(g.m, t.tm, Mt)[mi], sizes(g.n, t.tn, Nt)[ni], sizes(g.k, t.tk, Kt)[ki]
        load_a = mm * kk * g.ea * (g.a_in == "dram")
        if t.order == "a-panel":
            load_a = load_a * (ni == 0)
        load_w = kk * nn * g.ew * (g.w_in == "dram")
        if t.order == "w-resident":
            load_w = load_w * (mi == 0)
        last_k = ki == Kt - 1
        store = mm * nn * g.ec * last_k * (g.c_out == "dram")
        c = self.mm_cycles(mm, kk, nn) / self.ghz
        c[-1] += self.fill_drain / self.ghz
        loads = load_a + load_w
        ns = pipeline(loads / self.bw, c, store / self.bw)
        dram = float(loads.sum() + store.sum())
        sram = float(loads.sum() + store.sum() + (kk * nn * g.ew).sum()
                     + (mm * kk * g.ea * np.ceil(nn / self.C)).sum()
                     + (2 * ACC_BYTES * mm * nn * np.ceil(kk / self.R)).sum()
                     + (mm * nn * g.ec * last_k * (g.c_out == "sram")).sum())
        return StageTime(ns, float(c.sum()), dram / self.bw, dram, sram, g.macs, 0,
                         self._energy(dram, sram, g.macs, 0), t, need)

    def tilings(self, g: Gemm) -> list[Tiling]:
        tms = sorted({min(g.m, x) for x in (128, 256, 512, 1024, 2048, 4096, 8192)})
        tks = sorted({min(g.k, self.R * x) for x in (1, 2, 4, 8, 16, 32, 64, 128)})
        tns = sorted({min(g.n, self.C * x) for x in (1, 2, 4, 8, 16, 32, 64, 128)})
        out = []
        for tm in tms:
            for tk in tks:
                for tn in tns:
                    out.append(Tiling(tm, tk, tn, "stream"))
                    if g.a_in == "dram" and tn < g.n:
                        out.append(Tiling(tm, tk, tn, "a-panel"))
                    if g.w_in == "dram" and tm < g.m:
                        out.append(Tiling(tm, tk, tn, "w-resident"))
        return out

    def gemm(self, g: Gemm) -> StageTime:
        if min(g.batch, g.m, g.k, g.n) == 0:  # a zero-size operand: no work, no tiling
            return StageTime(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, None, 0.0)
        return _best_gemm(self, g)

    # ---- vector unit ----
    def vector(self, v: Vector) -> StageTime:
        rows = max(v.rows, 1)
        per = np.array([v.dram_in, v.dram_out, v.ops], dtype=np.float64) / rows
        resident = v.sram_in + v.sram_out
        best = None
        rt = rows
        while True:
            n = math.ceil(rows / rt)
            need = 2 * rt * (per[0] + per[1]) + resident
            if need <= self.sram and n <= 4096:
                size = np.full(n, float(rt))
                size[-1] = rows - rt * (n - 1)
                ns = pipeline(size * per[0] / self.bw, size * per[2] / (self.alus * self.ghz),
                              size * per[1] / self.bw)
                if best is None or ns < best[0]:
                    best = (ns, VecTiling(rt, n), need)
            if rt == 1:
                break
            rt = max(1, rt // 2)
        if best is None:
            raise SpecccError(f"NPU vector stage {v.label}: one row needs "
                              f"{int(2 * (per[0] + per[1]) + resident):,} bytes of SRAM, the "
                              f"NPU has {int(self.sram):,}")
        ns, tiling, need = best
        dram = v.dram_in + v.dram_out
        sram = 2 * v.dram_in + v.sram_in + v.sram_out + 2 * v.dram_out
        return StageTime(ns, v.ops / (self.alus * self.ghz), dram / self.bw, dram, sram, 0,
                         v.ops, self._energy(dram, sram, 0, v.ops), tiling, need)

    # ---- kernel ----
    def kernel(self, k: Kernel) -> KernelTime:
        return _kernel_time(self, k)


@functools.lru_cache(maxsize=4096)
def _best_gemm(model: NpuModel, g: Gemm) -> StageTime:
    best = None
    for t in model.tilings(g):
        r = model.gemm_eval(g, t)
        if r is not None and (best is None or (r.ns, r.energy_pj) < (best.ns, best.energy_pj)):
            best = r
    if best is None:
        raise SpecccError(f"NPU GEMM {g.label} {g.m}x{g.k}x{g.n}: no tiling fits the NPU SRAM")
    return best


@functools.lru_cache(maxsize=4096)
def _kernel_time(model: NpuModel, k: Kernel) -> KernelTime:
    stages = tuple(model.gemm(s) if isinstance(s, Gemm) else model.vector(s)
                   for s in k.stages)
    lat = model.dram_latency_ns
    return KernelTime(stages, lat + sum(s.ns for s in stages),
                      sum(s.energy_pj for s in stages), sum(s.dram_bytes for s in stages), lat)


@functools.lru_cache(maxsize=64)
def npu_model(hw, bw_share: float = 1.0) -> NpuModel:
    return NpuModel(hw, bw_share)
