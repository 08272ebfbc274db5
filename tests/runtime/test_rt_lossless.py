"""Greedy speculative decoding is lossless: every schedule and gamma produces exactly the
target-only greedy tokens (schedule none), over zoo pairs, seeds and agreement levels."""
from __future__ import annotations

import pytest
from rt_helpers import run

SPECULATIVE = [("serial", ""), ("serial", ",draft_channels=2"), ("overlap", ""),
               ("pipeinfer", ",p_accept=0.01,max_inflight=3")]
PAIRS = [("llama-tiny", 0, 0.1), ("llama-tiny", 1, 0.3), ("gpt2-tiny", 0, 0.1),
         ("opt-tiny", 2, 0.05)]


@pytest.mark.parametrize("base,seed,scale", PAIRS, ids=lambda v: str(v))
def test_greedy_equals_target_only(pairs, base, seed, scale):
    m = pairs(base, seed, scale)
    prompt = [(7 * seed + 3 * i + 1) % 256 for i in range(3 + seed)]
    ref, _ = run(m, "schedule=none", prompt=prompt, max_new_tokens=12)
    assert len(ref["tokens"]) == 12
    for gamma in (1, 2, 4, 8):
        for sched, opts in SPECULATIVE:
            rep, _ = run(m, f"schedule={sched},gamma={gamma}{opts}", prompt=prompt,
                         max_new_tokens=12)
            assert rep["tokens"] == ref["tokens"], (sched, opts, gamma)


def test_identical_models_accept_everything(pairs):
    """residual_scale 0: target logits equal the draft's, so every draft is accepted."""
    m = pairs("llama-tiny", 0, 0.0)
    rep, _ = run(m, "schedule=serial,gamma=4", prompt=[5, 6], max_new_tokens=16)
    assert rep["acceptance_rate"] == 1.0
    assert rep["mean_acceptance_length"] == pytest.approx(5.0, abs=0.5)


def test_pipeinfer_speculates_and_cancels(pairs):
    """With a low cutoff PipeInfer keeps several runs in flight and cancels some."""
    m = pairs("llama-tiny", 1, 0.3)
    ref, _ = run(m, "schedule=none", prompt=[9, 8, 7], max_new_tokens=20)
    rep, _ = run(m, "schedule=pipeinfer,gamma=3,p_accept=0.0,max_inflight=4",
                 prompt=[9, 8, 7], max_new_tokens=20)
    assert rep["tokens"] == ref["tokens"]
    assert rep["runs"].get("spec", 0) > 0 and rep["verifies"] > 0
    assert sum(rep["cancelled_runs"].values()) > 0


def test_context_caps_drafting(pairs):
    """Near the context end drafts shrink instead of running past the position table."""
    m = pairs("gpt2-tiny", 0, 0.1)   # learned positions: 128 rows
    ref, _ = run(m, "schedule=none", prompt=[1] * 118, max_new_tokens=10)
    for sched in ("serial", "overlap"):
        rep, _ = run(m, f"schedule={sched},gamma=8", prompt=[1] * 118, max_new_tokens=10)
        assert rep["tokens"] == ref["tokens"]
