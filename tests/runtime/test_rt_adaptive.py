"""Schedule knobs of serial/overlap drafts: `adaptive` draft length per request and the
`p_min` confidence cutoff."""
from __future__ import annotations

import pytest
from rt_helpers import run

from speccc.costmodel import OpCost


def cheap_draft(graph_ns):
    """Ops cost by model: the draft's 1 ns, the target's `graph_ns` (a big target)."""
    def cost(hw, op, bindings):
        ns = 1.0 if op.graph.name == "draft" else graph_ns
        return OpCost(ns, 1.0, 0.0, 0.0, "overhead")
    return {"npu": cost, "pim": cost, "host": cost}


@pytest.fixture(scope="module")
def shapes(pairs):
    return pairs("llama-tiny", 0, 0.1, weights=False, layers=1)


@pytest.mark.parametrize("alpha", [0.3, 0.9])
def test_adaptive_matches_the_best_fixed_gamma(shapes, alpha):
    kw = dict(acceptance=alpha, max_new_tokens=300, max_context=10 ** 6)
    fixed = {g: run(shapes, f"schedule=serial,gamma={g}", **kw)[0]["tokens_per_s"]
             for g in (1, 2, 4, 8)}
    rep, _ = run(shapes, "schedule=serial,gamma=8,adaptive=true", **kw)
    assert rep["tokens_per_s"] >= 0.97 * max(fixed.values()), (rep["tokens_per_s"], fixed)


def test_adaptive_drafts_longer_when_drafting_is_cheap_and_accepted(shapes):
    kw = dict(max_new_tokens=400, max_context=10 ** 6, cost_model=cheap_draft(1000.0))
    lengths = {}
    for alpha in (0.3, 0.95):
        rep, _ = run(shapes, "schedule=serial,gamma=8,adaptive=true", acceptance=alpha, **kw)
        blocks = [m for m, _ in rep["verify_outcomes"]]
        lengths[alpha] = sum(blocks) / len(blocks)
    assert lengths[0.3] < 4 < lengths[0.95], lengths


def test_adaptive_overlap_is_lossless(pairs):
    m = pairs("llama-tiny", 1, 0.6)
    ref, _ = run(m, "schedule=none", prompt=[3, 4, 5], max_new_tokens=16)
    rep, _ = run(m, "schedule=overlap,gamma=6,adaptive=true", prompt=[3, 4, 5],
                 max_new_tokens=16)
    assert rep["tokens"] == ref["tokens"] and rep["drafted_tokens"]["rejected"] > 0


def test_p_min_stops_drafts_below_the_confidence(shapes):
    """Synthetic confidences ~ Beta(2a, 2(1-a)): a cutoff shortens blocks, and the
    tokens it keeps are accepted more often."""
    kw = dict(acceptance=0.6, max_new_tokens=600, max_context=10 ** 6)
    free, _ = run(shapes, "schedule=serial,gamma=4", **kw)
    cut, _ = run(shapes, "schedule=serial,gamma=4,p_min=0.5", **kw)
    mean_block = [sum(m for m, _ in r["verify_outcomes"]) / len(r["verify_outcomes"])
                  for r in (free, cut)]
    assert mean_block[1] < mean_block[0]
    assert cut["acceptance_rate"] > free["acceptance_rate"] + 0.1


def test_knobs_are_serial_and_overlap_options(pairs):
    from speccc.errors import SpecccError
    with pytest.raises(SpecccError, match="serial/overlap options"):
        run(pairs(), "schedule=pipeinfer,adaptive=true", acceptance=0.5)
