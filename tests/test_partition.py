"""cost and partition passes: calibrated PIM costs, solvers, mappings, regions, report."""
from __future__ import annotations

import itertools
import json

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speccc import costmodel, zoo
from speccc.errors import SpecccError
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.hw import load_hw
from speccc.ir.core import Module
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.ir.types import DType, TensorType
from speccc.targets.pim.cost import EXACT_REPS, gemv_program, gemv_run, pim_cost
from speccc.passes._partition_solve import INF, SOLVERS, Problem, evaluate
from speccc.passes.partition import (convex_groups, dataflow, is_decode_gemm,
                                     partition_graph, partition_report, region_graph)
from speccc.passmanager import PassManager
from speccc.pipeline import run_canonical
from speccc.targets.pim.phase import time_phase  # gemv_run charges each program as a phase

BIND = {"T": 1, "P": 256}
POLICIES = ["greedy", "dp", "mincut"]


# ------------------------------------------------------------------ PIM calibration ---
def test_gemv_runs_are_the_emulator_and_extrapolation_is_close():
    hw = load_hw("aim-gddr6")
    for reps in (1, 3):
        exact = time_phase(gemv_program(hw, 4096, 4096, 1, reps), hw)
        assert gemv_run(hw, 4096, 4096, 1, reps).ns == exact.ns
    # beyond EXACT_REPS the marginal repetition is extrapolated; compare with emulating
    reps = 2 * EXACT_REPS + 1
    exact = time_phase(gemv_program(hw, 4096, 4096, 1, reps), hw)
    est = gemv_run(hw, 4096, 4096, 1, reps)
    assert not est.exact and est.ns == pytest.approx(exact.ns, rel=0.01)
    assert est.energy_pj == pytest.approx(exact.energy_total_pj, rel=0.01)


@pytest.mark.parametrize("preset", ["hbm-pim", "aim-gddr6", "hbm3-pim"])
def test_runs_are_cached_by_padded_shape_exactly(preset):
    hw = load_hw(preset)
    for M, K in ((1000, 128), (128, 1000), (300, 64)):
        direct = time_phase(gemv_program(hw, M, K, 4, 2), hw)
        assert gemv_run(hw, M, K, 4, 2).ns == direct.ns


def _g(name="g"):
    return Module().new_graph(name)


def _w(g, name, shape, dt=DType.f16):
    return g.create("weight", [], {"name": name}, [TensorType(tuple(shape), dt)]).result


def test_pim_cost_of_linear_and_attention_come_from_gemv_runs():
    hw = load_hw("hbm3-pim")
    g = _g()
    x = g.add_argument("x", TensorType((1, 2, 4096), DType.f16))
    lin = g.create("linear", [x, _w(g, "w", (4096, 11008))])
    assert pim_cost(hw, lin, {}).latency_ns == gemv_run(hw, 11008, 4096, 1, 2).ns
    q = g.add_argument("q", TensorType((1, 32, 1, 128), DType.f16))
    k = g.add_argument("k", TensorType((1, 8, 700, 128), DType.f16))
    att = g.create("attention", [q, k, k], {"scale": 0.1})
    c = pim_cost(hw, att, {})
    gemvs = gemv_run(hw, 700, 128, 8, 4).ns + gemv_run(hw, 128, 700, 8, 4).ns
    assert gemvs < c.latency_ns < gemvs * 1.2
    assert costmodel.CostModel(hw).op_cost(lin, "pim", {}).latency_ns == \
        gemv_run(hw, 11008, 4096, 1, 2).ns


def test_a_matrix_too_big_for_the_banks_is_inf_and_stays_on_the_npu():
    hw = load_hw("hbm-pim")
    g = _g()
    x = g.add_argument("x", TensorType((1, 1, 4096), DType.f16))
    big = g.create("linear", [x, _w(g, "w", (4096, 1 << 22))])
    assert pim_cost(hw, big, {}).latency_ns == INF
    g.set_outputs([big.result], ["y"])
    partition_graph(g, hw, {}, "mincut", "all-pim")
    assert big.attrs["device"] == "npu"
    row = next(r for r in partition_report(g)["ops"] if r["op"] == "linear")
    assert row["reason"] == "does not fit in the PIM banks"


# ------------------------------------------------------------------ solvers ----------
@st.composite
def problems(draw, max_n=9):
    n = draw(st.integers(1, max_n))
    cost = [(draw(st.floats(0, 5000)), draw(st.floats(0, 5000) | st.just(INF)))
            for _ in range(n)]
    fixed = [draw(st.sampled_from([None, None, None, 0, 1])) for _ in range(n)]
    fixed = [0 if f == 1 and cost[v][1] == INF else f for v, f in enumerate(fixed)]
    values = []
    for u in range(n - 1):
        cons = draw(st.sets(st.integers(u + 1, n - 1), max_size=3))
        if cons:
            values.append((u, tuple(sorted(cons)), draw(st.floats(0, 3000))))
    return Problem(cost, fixed, values, list(range(n)))


def _brute(p: Problem) -> float:
    best = INF
    for a in itertools.product(*(p.allowed(v) for v in range(p.n))):
        best = min(best, evaluate(p, a))
    return best


@settings(max_examples=150, deadline=None)
@given(problems())
def test_exact_solvers_find_the_optimum_and_none_loses_to_a_uniform_mapping(p):
    opt = _brute(p)
    sols = {name: SOLVERS[name](p) for name in POLICIES}
    for name, s in sols.items():
        assert s.total == pytest.approx(evaluate(p, s.assign))
        assert all(s.assign[v] in p.allowed(v) for v in range(p.n))
        assert s.total <= evaluate(p, [f if f is not None else 0 for f in p.fixed]) + 1e-6
        assert s.total <= evaluate(p, [f if f is not None else 1 for f in p.fixed]) + 1e-6
    # mincut works in integer picoseconds: exact up to that rounding
    assert sols["mincut"].total == pytest.approx(opt, abs=1e-3 * (p.n + len(p.values)) + 1e-9)
    assert sols["dp"].exact and sols["dp"].total == pytest.approx(opt, rel=1e-9, abs=1e-9)
    assert sols["greedy"].total >= opt - 1e-6


# ------------------------------------------------------------------ regions ----------
@st.composite
def op_dags(draw):
    g = _g()
    width = draw(st.sampled_from([16, 4096, 65536]))
    vals = [g.add_argument("x", TensorType((1, width), DType.f32))]
    for i in range(draw(st.integers(1, 16))):
        a = draw(st.sampled_from(vals))
        if draw(st.booleans()):
            op = g.create("add", [a, draw(st.sampled_from(vals))])
        else:
            kind = draw(st.sampled_from(["relu", "neg", "transpose"]))   # transpose: glue
            op = g.create(kind, [a], {"perm": [0, 1]} if kind == "transpose" else {})
        if op.name != "transpose":
            op.attrs["cost_ns"] = [draw(st.floats(1, 5000)), draw(st.floats(1, 5000))]
            op.attrs["cost_pj"] = [1.0, 1.0]
        vals.append(op.result)
    g.set_outputs([vals[-1]], ["y"])
    g.attrs["cost_hw"], g.attrs["cost_bind"] = "hbm-pim", []
    return g, draw(st.randoms(use_true_random=False))


def _check_regions(g):
    rg = region_graph(g)
    assert nx.is_directed_acyclic_graph(rg)
    devices = {}
    for op in g.ops():
        if "region" in op.attrs:
            assert devices.setdefault(op.attrs["region"], op.attrs["device"]) == op.attrs["device"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op_dags(), st.sampled_from(POLICIES))
def test_partition_regions_never_form_a_cycle(case, policy):
    g, rnd = case
    hw = load_hw("hbm-pim")
    sol = partition_graph(g, hw, {}, policy)
    _check_regions(g)
    info = dict(g.attrs["partition"])
    assert info["latency_ns"] <= min(info["all_npu_ns"], info["all_pim_ns"]) * (1 + 1e-9)
    assert sol.total == pytest.approx(info["latency_ns"], rel=1e-5)
    # and for any labelling at all, not only optimal ones
    ops, producers, _ = dataflow(g, {})
    dev = {op: rnd.choice("ab") for op in ops}
    groups = convex_groups(ops, producers, lambda v, gof: sorted(
        {gof(u) for u in producers[v] if dev[u] == dev[v]}))
    cg = nx.DiGraph()
    cg.add_nodes_from(groups.values())
    cg.add_edges_from((groups[u], groups[v]) for v in ops for u in producers[v]
                      if groups[u] != groups[v])
    assert nx.is_directed_acyclic_graph(cg)
    assert all(dev[u] == dev[v] for u in ops for v in ops if groups[u] == groups[v])


# ------------------------------------------------------------------ a real model -----
@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "68m.onnx"
    zoo.save(zoo.build("llama-68m", mode="decode", dtype="float16"), p)
    m = import_model(p, ImportOptions(shapes_only=True))
    run_canonical(m)
    PassManager.parse("cost{hw=aim-gddr6,bind=T=1:P=256}").run(m)
    return print_module(m)


def _run(text, spec):
    m = parse_module(text)
    PassManager.parse(spec).run(m)
    return m.graphs["target"]


def test_cost_annotates_kernels_only_and_records_the_setting(llama):
    g = parse_module(llama).graphs["target"]
    assert g.attrs["cost_hw"] == "aim-gddr6" and g.attrs["cost_bind"] == ["T=1", "P=256"]
    for op in g.ops():
        assert ("cost_ns" in op.attrs) == (not costmodel.is_glue(op)), op.name
    assert any("T" in a.result.type.symbols for a in g.arguments)   # types stay symbolic


@pytest.mark.parametrize("policy", POLICIES)
def test_policies_never_lose_to_all_npu_or_all_pim(llama, policy):
    g = _run(llama, f"partition{{policy={policy}}}")
    info = dict(g.attrs["partition"])
    assert info["latency_ns"] <= min(info["all_npu_ns"], info["all_pim_ns"]) * (1 + 1e-9)
    _check_regions(g)


def test_fixed_mappings_follow_the_published_designs(llama):
    g = _run(llama, "partition{mapping=attacc}")
    for op in g.ops():
        if "device" in op.attrs:
            assert op.attrs["device"] == ("pim" if op.name == "attention" else "npu")
    g = _run(llama, "partition{mapping=specpim}")
    ops, producers, _ = dataflow(g, BIND)
    pos = {op: i for i, op in enumerate(ops)}
    seen_gemm = False
    for op in ops:  # non-GEMMs PIM can run go where their latest producer goes
        seen_gemm |= is_decode_gemm(op)
        if not is_decode_gemm(op):
            if not seen_gemm or not producers[op] or op.attrs["cost_ns"][1] == float("inf"):
                assert op.attrs["device"] == "npu"  # before any GEMM, or PIM cannot run it
            else:
                assert op.attrs["device"] == max(producers[op], key=pos.get).attrs["device"]
    g = _run(llama, "partition{mapping=all-npu}")
    assert {op.attrs["device"] for op in g.ops() if "device" in op.attrs} == {"npu"}
    g = _run(llama, "partition{mapping=all-pim}")  # what PIM cannot run falls back to NPU
    for op in g.ops():
        if "device" in op.attrs:
            runs_on_pim = op.attrs["cost_ns"][1] != float("inf")
            assert op.attrs["device"] == ("pim" if runs_on_pim else "npu"), op.name
    assert any(op.attrs.get("device") == "pim" for op in g.ops())


def test_specpim_runs_prefill_on_the_npu(llama):
    g = _run(llama, "partition{mapping=specpim,bind=T=16:P=0}")
    assert {op.attrs["device"] for op in g.ops() if "device" in op.attrs} == {"npu"}


def test_report_is_json_and_survives_print_parse(llama):
    g = _run(llama, "partition{policy=dp}")
    rep = partition_report(g)
    json.dumps(rep)
    assert rep["policy"] == "dp" and rep["hw"] == "aim-gddr6"
    assert len(rep["ops"]) == len(g.ops())
    kinds = {r["device"] for r in rep["ops"]}
    assert "host" in kinds and all(r["reason"] for r in rep["ops"])
    again = parse_module(print_module(g.module)).graphs["target"]
    assert partition_report(again) == rep
    total = sum(r["npu_ns" if r["device"] == "npu" else "pim_ns"] for r in rep["ops"]
                if r["device"] != "host")
    assert total + rep["transfer_ns"] == pytest.approx(rep["latency_ns"], rel=1e-4)


@pytest.mark.parametrize("spec, msg", [
    ("partition{policy=best}", "unknown policy"),
    ("partition{mapping=tpu}", "unknown mapping"),
    ("partition{policy=fixed}", "needs a mapping"),
])
def test_bad_options_are_clear_errors(llama, spec, msg):
    with pytest.raises(SpecccError, match=msg):
        _run(llama, spec)


def test_unpartitioned_graph_has_no_report(llama):
    with pytest.raises(SpecccError, match="not partitioned"):
        partition_report(parse_module(llama).graphs["target"])


def test_transfers_are_charged_once_per_value(llama):
    g = _run(llama, "partition{mapping=attacc}")
    info = dict(g.attrs["partition"])
    hw = load_hw("aim-gddr6")
    layers = 2
    # per layer: q, k, v into the attention, its output back: 4 crossings
    assert info["transfers"] == 4 * layers
    one = costmodel.transfer_cost(hw, 768 * 2).latency_ns
    assert info["transfer_ns"] == pytest.approx(4 * layers * one, rel=1e-6)
    assert np.isfinite(info["energy_pj"])
