"""Human-readable NPU programs, one per op (lower-npu puts them in the module's listing
store as npu/<graph>/NNNN_<op>.npu; targets/npu/target.py).

    text = kernel_listing(op, hw, {"T": 1, "P": 128})

A listing shows what the timing model charges, stage by stage: the tiling it chose, the
tile loops, each DMA load/store with its bytes and each MATMUL tile with its cycles
(`timing.py` explains the formulas), and the stage and kernel totals. Listings are for
reading; they are not parsed back. Output is deterministic.
"""
from __future__ import annotations

import math

from speccc.targets.npu.kernels import Gemm, Kernel, kernel_for
from speccc.targets.npu.timing import NpuModel, npu_model


def _b(x: float) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if x >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x:.0f} B"


def _mib(x: float) -> str:
    return f"{x / 2**20:.2f} MiB" if x >= 2**20 else f"{x / 2**10:.1f} KiB"


def _t(ns: float) -> str:
    return f"{ns / 1e3:.2f} us" if ns >= 1e3 else f"{ns:.1f} ns"


def _dt(e: float) -> str:
    return {0.5: "i4", 1: "8b", 2: "16b", 4: "32b", 8: "64b"}.get(e, f"{e}B")


def _gemm_lines(model: NpuModel, g: Gemm, st) -> list[str]:
    t = st.tiling
    if t is None:  # NpuModel.gemm: a zero-size operand has no work and no tiling
        return [f"  gemm \"{g.label}\": batch {g.batch}, m={g.m} k={g.k} n={g.n}: empty, "
                "nothing to do"]
    Mt, Kt, Nt = math.ceil(g.m / t.tm), math.ceil(g.k / t.tk), math.ceil(g.n / t.tn)
    lines = [f"  gemm \"{g.label}\": batch {g.batch}, m={g.m} k={g.k} n={g.n} "
             f"(A {_dt(g.ea)} {g.a_in}, W {_dt(g.ew)} {g.w_in}, C {_dt(g.ec)} {g.c_out})",
             f"    tiling tm={t.tm} tk={t.tk} tn={t.tn} order={t.order}; "
             f"SRAM {_mib(st.sram_used)} of {_mib(model.sram)}"]
    edges = [f"last {v} tile {n}={s - (c - 1) * ts}" for v, n, s, ts, c in
             (("mi", "tm", g.m, t.tm, Mt), ("ki", "tk", g.k, t.tk, Kt), ("ni", "tn", g.n, t.tn, Nt))
             if s % ts]
    if edges:
        lines.append("    # " + ", ".join(edges))
    ind = "    "
    if g.batch > 1:
        lines.append(f"{ind}loop b {g.batch} {{")
        ind += "  "
    lines += [f"{ind}loop mi {Mt} {{", f"{ind}  loop ni {Nt} {{", f"{ind}    loop ki {Kt} {{"]
    body = ind + "      "
    a_sl, w_sl = f"[{t.tm}*mi:+{t.tm}, {t.tk}*ki:+{t.tk}]", f"[{t.tk}*ki:+{t.tk}, {t.tn}*ni:+{t.tn}]"
    if g.a_in == "dram":
        note = "  (ni == 0 only: the A row-panel stays in SRAM)" if t.order == "a-panel" else ""
        lines.append(f"{body}DMA.LOAD  A{a_sl} -> sram.A   {_b(t.tm * t.tk * g.ea)}{note}")
    if g.w_in == "dram":
        note = "  (mi == 0 only: W stays in SRAM)" if t.order == "w-resident" else ""
        lines.append(f"{body}DMA.LOAD  W{w_sl} -> sram.W[ki%2]   {_b(t.tk * t.tn * g.ew)}{note}")
    nblk = math.ceil(t.tk / model.R) * math.ceil(t.tn / model.C)
    blocks = math.ceil(nblk / model.pes)
    cyc = int(model.mm_cycles(t.tm, t.tk, t.tn))
    src_a = "sram.A" if g.a_in == "dram" else f"A{a_sl} (in SRAM)"
    src_w = "sram.W[ki%2]" if g.w_in == "dram" else f"W{w_sl} (in SRAM)"
    lines.append(f"{body}MATMUL    acc[{t.tm}x{t.tn}] += {src_a} @ {src_w}   "
                 f"{t.tm}x{t.tk}x{t.tn}: {nblk} blocks on {model.pes} arrays, {blocks} each x "
                 f"max({t.tm},{model.R}) = {cyc} cycles")
    lines.append(f"{ind}    }}")
    out = f"C[{t.tm}*mi:+{t.tm}, {t.tn}*ni:+{t.tn}]"
    if g.c_out == "dram":
        lines.append(f"{ind}    DMA.STORE acc -> {out}   {_b(t.tm * t.tn * g.ec)}")
    else:
        lines.append(f"{ind}    KEEP      acc -> sram.{out}")
    lines += [f"{ind}  }}", f"{ind}}}"]
    if g.batch > 1:
        lines.append("    }")
    lines.append(f"    # array fill/drain once at the end: {model.fill_drain} cycles")
    lines.append(f"    # {_t(st.ns)}: DMA {_t(st.dma_ns)}, arrays {_t(st.compute_ns)}; "
                 f"DRAM {_b(st.dram_bytes)}, {st.macs:,} MACs, {st.energy_pj / 1e6:.3f} uJ")
    return lines


def _vector_lines(model: NpuModel, v, st) -> list[str]:
    t = st.tiling
    where = ("dram" if v.dram_in else "") + ("+sram" if v.sram_in else "")
    dst = ("dram" if v.dram_out else "") + ("+sram" if v.sram_out else "")
    per_in, per_out = v.dram_in / max(v.rows, 1), v.dram_out / max(v.rows, 1)
    ops = v.ops / max(v.rows, 1) * t.rows
    lines = [f"  vector \"{v.label}\": {v.rows} rows x {v.row} (in {where.strip('+') or '-'}, "
             f"out {dst.strip('+') or '-'}), {t.rows} rows per tile",
             f"    loop t {t.tiles} {{"]
    if v.dram_in:
        lines.append(f"      DMA.LOAD  in[{t.rows}*t:+{t.rows}] -> sram.in[t%2]   {_b(per_in * t.rows)}")
    lines.append(f"      VEC       {v.label} rows[{t.rows}*t:+{t.rows}]   {ops:,.0f} ops / "
                 f"{model.alus} ALUs = {math.ceil(ops / model.alus)} cycles")
    if v.dram_out:
        lines.append(f"      DMA.STORE sram.out[t%2] -> out[{t.rows}*t:+{t.rows}]   {_b(per_out * t.rows)}")
    lines += ["    }", f"    # {_t(st.ns)}: DMA {_t(st.dma_ns)}, vector {_t(st.compute_ns)}; "
              f"DRAM {_b(st.dram_bytes)}, {st.vec_ops:,} ops, {st.energy_pj / 1e6:.3f} uJ"]
    return lines


def format_kernel(hw, k: Kernel, title: str, bw_share: float = 1.0) -> str:
    model = npu_model(hw, bw_share)
    kt = model.kernel(k)
    n = hw.npu
    lines = [f"# speccc NPU program: {title}", f"# {k.signature}",
             f"# hw {hw.name}: {n.pes} systolic arrays {n.array_rows}x{n.array_cols} @ "
             f"{n.clock_mhz:g} MHz, {n.vector_alus} vector ALUs, SRAM {_mib(n.sram_bytes)}, "
             f"DRAM {model.bw:g} GB/s", f"kernel {k.op} {{"]
    for i, (s, st) in enumerate(zip(k.stages, kt.stages)):
        lines.append(f"  # stage {i}")
        lines += (_gemm_lines(model, s, st) if isinstance(s, Gemm)
                  else _vector_lines(model, s, st))
    lines += ["}", f"# total {_t(kt.ns)} (first DRAM access {_t(kt.latency_ns)}), "
              f"{kt.bound}-bound; DRAM {_b(kt.dram_bytes)}; energy {kt.energy_pj / 1e6:.3f} uJ"]
    return "\n".join(lines) + "\n"


def kernel_listing(op, hw, bindings, title: str | None = None, bw_share: float = 1.0) -> str:
    return format_kernel(hw, kernel_for(hw, op, bindings), title or f"{op.name} ({op.where()})",
                         bw_share)
