"""The synthetic acceptance process (shapes-only models, --acceptance a): serial's mean
acceptance length matches E = (1 - a^(gamma+1)) / (1 - a) within 5% over >= 2000
verifies, and per-position acceptance follows a^i."""
from __future__ import annotations

import pytest
from rt_helpers import run

from speccc.costmodel import OpCost


def flat(hw, op, bindings):
    """Constant op cost: these tests are about acceptance, not time (and stay fast)."""
    return OpCost(100.0, 1.0, 0.0, 0.0, "overhead")


FLAT = {"npu": flat, "pim": flat, "host": flat}


@pytest.fixture(scope="module")
def shapes(pairs):
    return pairs("llama-tiny", 0, 0.1, weights=False, layers=1)


@pytest.mark.parametrize("alpha,gamma", [(0.8, 4), (0.6, 8)])
def test_serial_mean_acceptance_length(shapes, alpha, gamma):
    expected = (1 - alpha ** (gamma + 1)) / (1 - alpha)
    rep, _ = run(shapes, f"schedule=serial,gamma={gamma}", prompt_len=4, acceptance=alpha,
                 seed=7, max_new_tokens=int(2050 * expected), max_context=10 ** 6,
                 cost_model=FLAT, granularity="stage")
    assert rep["mode"] == "synthetic"
    assert rep["verifies"] >= 2000
    assert rep["mean_acceptance_length"] == pytest.approx(expected, rel=0.05)
    for i, acc in enumerate(rep["per_position_acceptance"][:3], start=1):
        assert acc == pytest.approx(alpha ** i, abs=0.05)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_extreme_acceptance(shapes, alpha):
    rep, _ = run(shapes, "schedule=serial,gamma=3", prompt_len=2, acceptance=alpha,
                 max_new_tokens=40, max_context=10 ** 6, cost_model=FLAT)
    assert rep["mean_acceptance_length"] == (4.0 if alpha == 1.0 else 1.0)
    assert rep["generated_tokens"] == 40


def test_batched_requests_draw_their_own_acceptance(shapes):
    rep, _ = run(shapes, "schedule=serial,gamma=4,batch=4", prompt_len=4, acceptance=0.8,
                 seed=3, max_new_tokens=600, max_context=10 ** 6, cost_model=FLAT,
                 granularity="stage")
    assert rep["generated_tokens"] == 4 * 600
    assert rep["mean_acceptance_length"] == pytest.approx(3.36, rel=0.05)
    d = rep["drafted_tokens"]
    assert d["accepted"] + d["rejected"] > 0


def test_position_dependent_acceptance(shapes):
    """alpha_i per position in a block: the measured per-position rates follow them
    (P(token i accepted | verified) = alpha_i given the tokens before it were right)."""
    alphas = [0.9, 0.6, 0.3]
    rep, _ = run(shapes, "schedule=serial,gamma=3", prompt_len=2, acceptance=alphas,
                 max_new_tokens=1500, max_context=10 ** 6, cost_model=FLAT,
                 granularity="stage")
    pos = rep["per_position_acceptance"]
    expect = [alphas[0], alphas[0] * alphas[1], alphas[0] * alphas[1] * alphas[2]]
    assert pos == pytest.approx(expect, abs=0.04)


def test_trace_replay_reproduces_the_recorded_acceptance(pairs, tmp_path):
    """A functional run's verify outcomes, replayed on the shapes-only pair under the same
    schedule, give the same acceptance length and per-position rates."""
    import json

    from cli_helpers import invoke
    m = pairs("llama-tiny", 1, 0.3)
    rec, _ = run(m, "schedule=serial,gamma=4", prompt=[3, 4, 5], max_new_tokens=60)
    assert rec["drafted_tokens"]["rejected"] > 0
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(rec))
    from speccc.runtime.acceptance import load_trace
    shapes_only = pairs("llama-tiny", 1, 0.3, weights=False)
    rep, _ = run(shapes_only, "schedule=serial,gamma=4", prompt=[3, 4, 5],
                 max_new_tokens=60, acceptance_trace=load_trace(path))
    assert rep["verify_outcomes"][:10] == rec["verify_outcomes"][:10]
    assert rep["mean_acceptance_length"] == pytest.approx(rec["mean_acceptance_length"],
                                                          rel=0.1)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = invoke("run", "--target", "x.onnx", "--acceptance-trace", bad)
    assert r.exit_code == 2 and "not an acceptance trace" in r.stderr
