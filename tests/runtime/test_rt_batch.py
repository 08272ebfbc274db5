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
