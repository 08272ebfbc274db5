"""Trace validity for every schedule: no two slices overlap on one resource track, every
drafted token is verified (accepted/rejected) or cancelled, the slice energies plus the
PIM background (charged per run, not per slice) add up to the reported energy, cancellations are visible; the JSON is Chrome/Perfetto trace format."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest
from rt_helpers import run

from speccc.runtime.metrics import chrome_trace, dumps_trace

CASES = [("none", ""), ("serial", ""), ("serial", ",draft_channels=1"), ("overlap", ""),
         ("pipeinfer", ",p_accept=0.0,max_inflight=4"),
         ("pipeinfer", ",p_accept=0.0,stages=2,p_recovery=0.3")]


def check_trace(trace: dict, rep: dict, engine) -> None:
    ev = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev if e.get("name") == "thread_name"}
    assert sorted(names.values()) == sorted(engine.resources)
    by_track = defaultdict(list)
    for e in ev:
        if e["ph"] == "X":
            assert e["dur"] >= 0 and e["name"].endswith(f" r{e['args']['run']}")
            by_track[e["tid"]].append((e["args"]["start_ns"], e["args"]["end_ns"]))
    for tid, spans in by_track.items():
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert e0 <= s1 + 1e-6, f"overlap on {names[tid]}: {(s0, e0)} {(s1, e1)}"
    energy = sum(e["args"]["energy_pj"] for e in ev if e["ph"] == "X")
    assert energy / 1e9 + rep["pim_background_mj"] + rep["gpu_static_mj"] \
        == pytest.approx(rep["energy_mj"], rel=1e-9)
    drafted = sum(len(lm["proposal"].tokens) for r in engine.runs
                  for lm in r.meta.get("lanes", {}).values() if "proposal" in lm)
    assert set(rep["drafted_tokens"]) == {"accepted", "rejected", "cancelled"}
    assert sum(rep["drafted_tokens"].values()) == drafted
    if rep["schedule"] == "serial":   # nothing is speculative beyond the draft itself
        assert rep["drafted_tokens"]["cancelled"] == 0


@pytest.mark.parametrize("sched,opts", CASES, ids=lambda v: str(v))
def test_trace_valid_functional(pairs, sched, opts):
    m = pairs("llama-tiny", 1, 0.3)
    rep, engine = run(m, f"schedule={sched},gamma=3{opts}", prompt=[4, 5, 6],
                      max_new_tokens=16)
    trace = json.loads(dumps_trace(engine))
    check_trace(trace, rep, engine)
    if sched in ("overlap", "pipeinfer"):
        assert rep["drafted_tokens"]["cancelled"] > 0
        cancels = [e for e in trace["traceEvents"] if e["ph"] == "i"]
        assert cancels and all(e["name"].startswith("cancel r") for e in cancels)
        cancelled_runs = {e["args"]["run"] for e in cancels}
        assert cancelled_runs == {r.id for r in engine.runs if r.cancelled}


@pytest.mark.parametrize("sched,opts", CASES[1:], ids=lambda v: str(v))
def test_trace_valid_synthetic_real_size(sched, opts, pairs):
    """Shapes-only llama-like pair at op granularity with contention on the NPU."""
    m = pairs("llama-tiny", 0, 0.1, weights=False, hidden=256, ffn=688, heads=8,
              kv_heads=8, vocab=2048)
    rep, engine = run(m, f"schedule={sched},gamma=4{opts}", prompt_len=16,
                      acceptance=0.6, seed=2, max_new_tokens=40)
    check_trace(chrome_trace(engine), rep, engine)
    assert rep["generated_tokens"] == 40


def test_cancelled_work_is_marked_and_charged(pairs):
    """Overlap at low acceptance: cancelled pre-drafts stop between ops; what they ran
    is in the trace (category 'cancelled') and in the energy."""
    m = pairs("llama-tiny", 0, 0.1, weights=False)
    rep, engine = run(m, "schedule=overlap,gamma=6", prompt_len=8, acceptance=0.3, seed=1,
                      max_new_tokens=60)
    ev = chrome_trace(engine)["traceEvents"]
    cut = [e for e in ev if e["ph"] == "X" and e["cat"].startswith("cancelled")]
    assert cut and sum(e["args"]["energy_pj"] for e in cut) > 0
    cancelled = [r for r in engine.runs if r.cancelled]
    assert cancelled
    for r in cancelled:  # stopped between ops: every task either ran whole or not at all
        states = [t.state for t in r.tasks]
        assert set(states) <= {"done", "cancelled"} and "cancelled" in states


def test_device_attributes_win(pairs):
    """Ops a partition pass placed keep their device; the rest follow `placement`."""
    m = pairs("llama-tiny", 0, 0.1, weights=False)
    for g in ("draft", "target"):
        for op in m.graphs[g].ops():
            if op.name == "linear":
                op.attrs["device"] = "npu"
    try:
        rep, engine = run(m, "schedule=serial,gamma=2", acceptance=0.5, max_new_tokens=6)
        devices = {(s["op"], s["args"]["device"]) for s in engine.slices
                   if s["run_kind"] != "prefill" and s["kind"] == "op"}
        assert ("linear", "npu") in devices and ("linear", "pim") not in devices
    finally:
        for g in ("draft", "target"):
            for op in m.graphs[g].ops():
                op.attrs.pop("device", None)
