"""Batched requests (lanes): each request keeps its own tokens, KV and acceptance; the
runs serve the whole batch at once."""
from __future__ import annotations

import pytest
from rt_helpers import run

PROMPTS = [[3, 4, 5], [9, 8, 7, 6], [1, 2], [200, 17, 33]]


@pytest.mark.parametrize("sched", ["serial,gamma=4", "serial,gamma=2,draft_channels=2",
                                   "overlap,gamma=3"])
def test_each_request_equals_its_own_target_only_run(pairs, sched):
    m = pairs("llama-tiny", 1, 0.3)
    singles = [run(m, "schedule=none", prompt=p, max_new_tokens=10)[0]["tokens"]
               for p in PROMPTS]
    rep, _ = run(m, f"schedule={sched},batch=4", prompts=PROMPTS, max_new_tokens=10)
    assert [r["tokens"] for r in rep["requests"]] == singles
    assert rep["generated_tokens"] == 40 and rep["tokens"] == singles[0]
    assert rep["drafted_tokens"]["rejected"] > 0 and rep["drafted_tokens"]["accepted"] > 0
    assert len({r["acceptance_rate"] for r in rep["requests"]}) > 1   # requests differ


def test_batch_shares_runs(pairs):
    """Four requests in one batch: one run per step serves all four (link latency and
    the NPU's weight reads are shared), so it beats four requests run one by one."""
    m = pairs("llama-tiny", 1, 0.3, weights=False)
    one = run(m, "schedule=serial,gamma=4", acceptance=0.7, max_new_tokens=20)[0]
    four = run(m, "schedule=serial,gamma=4,batch=4", acceptance=0.7, max_new_tokens=20)[0]
    assert four["generated_tokens"] == 80 and len(four["requests"]) == 4
    assert four["runs"]["verify"] <= max(r["verifies"] for r in four["requests"]) + 1
    assert four["time_ms"] < 4 * one["time_ms"]


def test_sampled_batch_uses_one_stream_per_request(pairs):
    m = pairs("llama-tiny", 1, 0.3)
    rep, _ = run(m, "schedule=serial,gamma=3,batch=2", prompts=[PROMPTS[0]] * 2,
                 max_new_tokens=12, temperature=1.0, seed=5)
    a, b = (r["tokens"] for r in rep["requests"])
    assert a != b   # same prompt, independent samples
    solo, _ = run(m, "schedule=serial,gamma=3", prompt=PROMPTS[0], max_new_tokens=12,
                  temperature=1.0, seed=5)
    assert a == solo["tokens"]   # request 0 keeps the unbatched streams


def test_pipeinfer_batch_per_request_state(pairs):
    """PipeInfer with four requests: each equals its own target-only run; every
    speculative run is one request's (its own KV partition and cancellation), every
    request gets some (round-robin), and the per-request figures sum to the aggregates."""
    m = pairs("llama-tiny", 1, 0.3)
    singles = [run(m, "schedule=none", prompt=p, max_new_tokens=16)[0]["tokens"]
               for p in PROMPTS]
    rep, eng = run(m, "schedule=pipeinfer,gamma=3,batch=4,p_accept=0.1,max_inflight=2",
                   prompts=PROMPTS, max_new_tokens=16)
    reqs = rep["requests"]
    assert [r["tokens"] for r in reqs] == singles
    spec = [r for r in eng.runs if r.kind == "spec"]
    assert all(len(r.meta["lanes"]) == 1 for r in spec)
    assert {i for r in spec for i in r.meta["lanes"]} == {0, 1, 2, 3}
    for key in ("accepted", "rejected", "cancelled"):
        assert rep["drafted_tokens"][key] == sum(r["drafted_tokens"][key] for r in reqs)
    assert rep["drafted_tokens"]["rejected"] > 0
    assert sum(rep["cancelled_runs"].values()) > 0
    assert sum(r["cancelled_runs"].get("spec", 0) for r in reqs) == \
        rep["cancelled_runs"].get("spec", 0)
    assert rep["verifies"] == sum(r["verifies"] for r in reqs)
    # at most max_inflight speculative runs of one request in flight at any time
    for i in range(4):
        mine = [r for r in spec if i in r.meta["lanes"]]
        ends = [(r.finished if r.finished is not None else float("inf")) for r in mine]
        for r in mine:
            live = sum(1 for o, e in zip(mine, ends) if o.launched <= r.launched < e)
            assert live <= 2


def test_pipeinfer_batch_shares_the_pipeline(pairs):
    """Four requests' runs interleave on the in-order pipeline: the batch finishes well
    before four single-request runs back to back, and its non-speculative runs serve
    several requests at once (one weight pass) at least at the start."""
    m = pairs("llama-tiny", 1, 0.3, weights=False)
    spec = "schedule=pipeinfer,gamma=4,p_accept=0.1,stages=2"
    one = run(m, spec, acceptance=0.7, max_new_tokens=20)[0]
    four, eng = run(m, f"{spec},batch=4", acceptance=0.7, max_new_tokens=20)
    assert four["generated_tokens"] == 80
    assert four["time_ms"] < 4 * one["time_ms"]
    assert max(len(r.meta["lanes"]) for r in eng.runs if r.kind == "nonspec") == 4


def test_pipeinfer_batched_rounds(pairs):
    """rounds=batch: a burst round drafts for every request that may speculate in one
    draft run and verifies their blocks in one chained run of several rows; tokens stay
    each request's own, and a run with an invalid row is cancelled only once no row of it
    is valid (its invalid rows' results are dropped)."""
    m = pairs("llama-tiny", 1, 0.3)
    singles = [run(m, "schedule=none", prompt=p, max_new_tokens=16)[0]["tokens"]
               for p in PROMPTS]
    rep, eng = run(m, "schedule=pipeinfer,gamma=3,batch=4,p_accept=0.1,rounds=batch",
                   prompts=PROMPTS, max_new_tokens=16)
    assert [r["tokens"] for r in rep["requests"]] == singles
    spec = [r for r in eng.runs if r.kind == "spec"]
    assert max(len(r.meta["lanes"]) for r in spec) > 1
    assert rep["drafted_tokens"]["rejected"] > 0 and rep["cancelled_runs"].get("spec", 0) > 0
    one, _ = run(m, "schedule=pipeinfer,gamma=3,batch=4,p_accept=0.1", prompts=PROMPTS,
                 max_new_tokens=16)
    assert rep["runs"]["spec"] < one["runs"]["spec"]   # fewer, wider runs


def test_rounds_is_a_pipeinfer_option(pairs):
    from speccc.errors import SpecccError
    m = pairs("llama-tiny", 1, 0.3, weights=False)
    with pytest.raises(SpecccError, match="rounds=batch: burst rounds are a pipeinfer"):
        run(m, "schedule=serial,rounds=batch,batch=2", acceptance=0.5)
    with pytest.raises(SpecccError, match="rounds must be request or batch"):
        run(m, "schedule=pipeinfer,rounds=all,batch=2", acceptance=0.5)
