"""NPU target: timing sanity against the rooflines, tiled numerics, listings, estimator."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speccc import costmodel
from speccc.hw import load_hw
from speccc.ir.core import Module
from speccc.ir.opdefs import lookup
from speccc.ir.types import DType, TensorType
from speccc.targets.npu.estimator import npu_cost, npu_kernel_time
from speccc.targets.npu.kernels import Gemm, Vector
from speccc.passes._lower import lower_module
from speccc.targets.npu.program import kernel_listing
from speccc.targets.npu.semantics import run_op, tiled_matmul
from speccc.targets.npu.timing import NpuModel, npu_model

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]


def _graph():
    g = Module().new_graph("g")
    return g


def _weight(g, name, shape, dt=DType.f16):
    return g.create("weight", [], {"name": name}, [TensorType(tuple(shape), dt)]).result


def _linear(rows, k, n, dt=DType.f16):
    g = _graph()
    x = g.add_argument("x", TensorType((1, rows, k), dt))
    return g.create("linear", [x, _weight(g, "w", (k, n), dt)])


def _bounds(hw, macs, nbytes):
    m = npu_model(hw)
    return macs / m.peak_macs_per_ns, nbytes / m.bw


@pytest.mark.parametrize("preset", PRESETS)
def test_big_gemm_is_compute_bound_and_approaches_peak(preset):
    hw = load_hw(preset)
    op = _linear(4096, 4096, 4096)
    c = npu_cost(hw, op, {})
    t_c, t_m = _bounds(hw, 4096 ** 3, c.bytes_moved)
    assert c.bound == "compute"
    assert c.latency_ns >= t_c and c.latency_ns >= t_m
    assert t_c / c.latency_ns > 0.9   # lost: fill/drain, loads not hidden behind MATMULs


@pytest.mark.parametrize("preset", PRESETS)
def test_gemv_is_memory_bound_and_never_beats_bandwidth(preset):
    hw = load_hw(preset)
    c = npu_cost(hw, _linear(1, 4096, 4096), {})
    weights = 4096 * 4096 * 2
    t_c, t_m = _bounds(hw, 4096 * 4096, weights)
    assert c.bytes_moved >= weights
    assert c.latency_ns >= t_m and c.latency_ns >= t_c
    # A GEMV on weight-stationary arrays shifts in one weight row per cycle: C weights per
    # cycle per array, 1.07 TB/s of fp16 here; just above AiM's 1 TB/s, so even there the
    # DMA is the bound
    assert c.bound == "memory"
    assert t_m / c.latency_ns > 0.95


def test_bandwidth_share_slows_memory_bound_kernels():
    hw = load_hw("hbm-pim")
    op = _linear(1, 4096, 4096)
    full, half = npu_cost(hw, op, {}), npu_cost(hw, op, {}, bw_share=0.5)
    assert half.latency_ns == pytest.approx(2 * full.latency_ns, rel=0.02)
    with pytest.raises(ValueError):
        NpuModel(hw, 0.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 3000), k=st.integers(1, 5000), n=st.integers(1, 5000),
       batch=st.integers(1, 4), preset=st.sampled_from(PRESETS),
       a_in=st.sampled_from(["dram", "sram"]), c_out=st.sampled_from(["dram", "sram"]))
def test_gemm_never_beats_either_roofline(m, k, n, batch, preset, a_in, c_out):
    hw = load_hw(preset)
    model = npu_model(hw)
    g = Gemm("t", batch, m, k, n, 2, 2, 2, a_in=a_in, c_out=c_out)
    s = model.gemm(g)
    compulsory = batch * (k * n * 2 + (m * k * 2 if a_in == "dram" else 0)
                          + (m * n * 2 if c_out == "dram" else 0))
    assert s.dram_bytes >= compulsory - 1e-6
    assert s.ns >= g.macs / model.peak_macs_per_ns * (1 - 1e-12)
    assert s.ns >= s.dram_bytes / model.bw * (1 - 1e-12)
    assert s.sram_used <= model.sram
    assert s.energy_pj >= g.macs * hw.energy.npu_mac_pj


@pytest.mark.parametrize("preset", PRESETS)
def test_vector_ops_stream_at_bandwidth(preset):
    hw = load_hw(preset)
    model = npu_model(hw)
    v = Vector("rmsnorm", 4096, 4096, 5 * 4096 * 4096, 4096 * 4096 * 2, dram_out=4096 * 4096 * 2)
    s = model.vector(v)
    t_m = (v.dram_in + v.dram_out) / model.bw
    assert s.ns >= t_m * (1 - 1e-12)
    assert s.ns >= v.ops / (hw.npu.vector_alus * model.ghz)
    assert t_m / s.ns > 0.95   # many row tiles: loads, compute and stores overlap


def test_decode_step_kernels_and_energy_components():
    hw = load_hw("hbm-pim")
    g = _graph()
    q = g.add_argument("q", TensorType((1, 8, 1, 64), DType.f16))
    k = g.add_argument("k", TensorType((1, 2, 300, 64), DType.f16))
    att = g.create("attention", [q, k, k], {"scale": 0.125})
    kt = npu_kernel_time(hw, att, {})
    assert [type(s.tiling).__name__ for s in kt.stages] == ["Tiling", "VecTiling", "Tiling"]
    kv = 2 * 2 * 300 * 64 * 2
    assert kt.dram_bytes >= kv and kt.ns >= kv / hw.npu.ext_bandwidth_gbs
    dram_pj = kt.dram_bytes * 8 * (hw.energy.external_pj_per_bit
                                   + hw.energy.act_pj / (hw.pim.row_bytes * 8))
    assert kt.energy_pj > dram_pj


def _small_npu(preset="hbm-pim"):
    hw = load_hw(preset)
    return dataclasses.replace(hw, npu=dataclasses.replace(
        hw.npu, array_rows=8, array_cols=8, pes=2, sram_bytes=24 * 1024))


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 70), k=st.integers(1, 150), n=st.integers(1, 150),
       transpose=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_tiled_linear_matches_the_reference(rows, k, n, transpose, bias, seed):
    hw = _small_npu()
    rng = np.random.default_rng(seed)
    g = _graph()
    x = g.add_argument("x", TensorType((1, rows, k), DType.f32))
    w = _weight(g, "w", (n, k) if transpose else (k, n), DType.f32)
    ops = [x, w] + ([_weight(g, "b", (n,), DType.f32)] if bias else [])
    op = g.create("linear", ops, {"transpose_w": transpose})
    ins = [rng.standard_normal((1, rows, k)).astype(np.float32),
           (rng.standard_normal((n, k) if transpose else (k, n)) / np.sqrt(k)).astype(np.float32)]
    if bias:
        ins.append(rng.standard_normal(n).astype(np.float32))
    (got,) = run_op(op, ins, hw)
    (want,) = lookup("linear").ref(ins, lookup("linear").full_attrs(op.attrs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_tiles_have_edges_and_gated_mlp_matches():
    hw = _small_npu()
    rng = np.random.default_rng(0)
    g = _graph()
    x = g.add_argument("x", TensorType((1, 37, 45), DType.f32))
    ws = [_weight(g, n, s, DType.f32) for n, s in (("g", (45, 70)), ("u", (45, 70)), ("d", (70, 29)))]
    op = g.create("gated_mlp", [x, *ws])
    kt = npu_kernel_time(hw, op, {})
    t = kt.stages[0].tiling
    assert (37 % t.tm or 45 % t.tk or 70 % t.tn) and t.tk < 45   # real tiles, with edges
    ins = [rng.standard_normal((1, 37, 45)).astype(np.float32)] + \
          [(rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32)   # O(1) activations
           for s in ((45, 70), (45, 70), (70, 29))]
    (got,) = run_op(op, ins, hw)
    (want,) = lookup("gated_mlp").ref(ins, lookup("gated_mlp").full_attrs(op.attrs))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    a = rng.standard_normal((3, 5, 9)).astype(np.float32)
    b = rng.standard_normal((9, 4)).astype(np.float32)
    np.testing.assert_allclose(tiled_matmul(a[0], b, 2, 4, 3), a[0] @ b, rtol=1e-5)


def test_listing_shows_loops_dma_and_matmul_and_is_deterministic():
    hw = load_hw("hbm-pim")
    op = _linear(1, 4096, 11008)
    text = kernel_listing(op, hw, {})
    assert text == kernel_listing(op, hw, {})
    for word in ("kernel linear", "loop ni", "DMA.LOAD  W[", "MATMUL", "DMA.STORE", "fill/drain",
                 "memory-bound"):
        assert word in text, word


def test_lower_npu_replaces_npu_ops_with_kernels_and_listings():
    hw = load_hw("hbm-pim")
    g = _graph()
    x = g.add_argument("x", TensorType((1, 4, 256), DType.f16))
    h = g.create("rmsnorm", [x, _weight(g, "n", (256,))], {"eps": 1e-5}).result
    y = g.create("linear", [h, _weight(g, "w", (256, 512))], {"device": "npu"}).result
    z = g.create("linear", [y, _weight(g, "w2", (512, 256))], {"device": "pim"}).result
    g.set_outputs([g.create("reshape", [z, g.create("const", [], {
        "value": np.array([4, 256], np.int64)}).result]).result], ["y"])
    expected = npu_cost(hw, y.op, {}).latency_ns
    lower_module(g.module, "npu", hw, {})
    listings = g.module.listings
    assert sorted(listings) == ["npu/g/0000_rmsnorm.npu", "npu/g/0001_linear.npu",
                                "npu/g/index.txt"]
    assert listings["npu/g/0001_linear.npu"].startswith("# speccc NPU program")
    assert "2 ops" in listings["npu/g/index.txt"]
    kernels = [op for op in g.ops() if op.name == "npu.kernel"]
    assert [op.attrs["op"] for op in kernels] == ["rmsnorm", "linear"]
    assert kernels[1].attrs["listings"] == ["npu/g/0001_linear.npu"]
    assert kernels[1].attrs["ns"] == [expected]


def test_the_npu_target_costs_with_its_model_and_the_roofline_kept():
    from speccc.targets import target
    hw = load_hw("hbm-pim")
    assert target("npu").cost(hw, _linear(1, 64, 64), {}) == npu_cost(hw, _linear(1, 64, 64), {})
    assert costmodel.roofline_estimators()["npu"] is costmodel.roofline_npu
    op = _linear(1, 4096, 4096)
    refined = costmodel.CostModel(hw).op_cost(op, "npu", {})
    roof = costmodel.roofline_npu(hw, op, {})
    assert refined.latency_ns >= roof.latency_ns - 50.0   # the roofline's fixed overhead
    assert refined.latency_ns < 1.1 * roof.latency_ns
