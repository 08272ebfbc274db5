"""Sampling is lossless: rejection sampling min(1, p/q) with the residual max(0, p - q)
gives exactly the target's distribution (chi-square), directly on the sampler and end to
end through the runtime on a tiny-vocabulary pair."""
from __future__ import annotations

import numpy as np
import pytest
from rt_helpers import pair_module
from scipy import stats

from speccc.ir.interpreter import Plan
from speccc.passmanager import PassManager
from speccc.runtime.runner import RunConfig, simulate
from speccc.runtime.sampling import rejection_sample, residual, softmax

ALPHA = 1e-3  # chance of a false alarm per test


def chi2_ok(counts, probs) -> bool:
    counts, probs = np.asarray(counts, float), np.asarray(probs, float)
    keep = probs * counts.sum() >= 5          # merge sparse cells into one
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(probs[keep], probs[~keep].sum()) * counts.sum()
    obs, exp = obs[exp > 0], exp[exp > 0]
    return stats.chisquare(obs, exp).pvalue > ALPHA


def test_residual():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(residual(p, q), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(residual(p, p), p)


@pytest.mark.parametrize("seed", [0, 1])
def test_sampler_matches_target(seed):
    """Two draft positions over a 6-token vocabulary: the first emitted token ~ p1 and,
    after an accepted first draft, the second ~ p2 (context-free synthetic rows)."""
    rng = np.random.default_rng(seed)
    V, n = 6, 20000
    p1, p2, p3 = rng.dirichlet(np.ones(V), 3)
    q1, q2 = rng.dirichlet(np.ones(V) * 0.5, 2)
    first, second = np.zeros(V), np.zeros(V)
    drafts = np.stack([rng.choice(V, size=n, p=q1), rng.choice(V, size=n, p=q2)], 1)
    for d in drafts.tolist():
        k, nxt = rejection_sample([p1, p2, p3], [q1, q2], d, rng)
        emitted = d[:k] + [nxt]
        first[emitted[0]] += 1
        if k >= 1:
            second[emitted[1]] += 1
    assert chi2_ok(first, p1)
    assert chi2_ok(second, p2)
    assert not chi2_ok(first, q1)  # the test has power: the draft's own q is rejected


def exact_marginals(m, prompt, t, V):
    """Target-only distributions of the 2nd and 3rd generated tokens, by enumeration."""
    plan = Plan(m.graphs["target"])
    g = m.graphs["target"]
    empty = {a.result.name: np.zeros((1, a.result.type.shape[1], 0, a.result.type.shape[3]),
                                     np.float32)
             for a in g.arguments if a.result.name.startswith("past_")}

    def dist(tokens):
        feeds = {"input_ids": np.asarray([tokens], np.int64),
                 "position_ids": np.arange(len(tokens), dtype=np.int64)[None], **empty}
        return softmax(plan.run(feeds)["logits"][0, -1], t)

    p1 = dist(prompt)
    m2, m3 = np.zeros(V), np.zeros(V)
    for a in range(V):
        pa = dist(prompt + [a])
        m2 += p1[a] * pa
        for b in range(V):
            m3 += p1[a] * pa[b] * dist(prompt + [a, b])
    return m2, m3


@pytest.mark.parametrize("schedule", ["none", "serial", "overlap", "pipeinfer"])
def test_end_to_end_sampling_matches_target(schedule):
    """Many seeded runs of 3 tokens; tokens 2 and 3 go through draft + verify (pipeinfer
    at its default cutoff: a 5-token vocabulary makes the draft confident often)."""
    V, t, prompt = 5, 1.0, [1, 2]
    m = pair_module("llama-tiny", 0, 1.0, vocab=V, hidden=16, heads=2, kv_heads=1, ffn=32,
                    layers=1)
    m2, m3 = exact_marginals(m, prompt, t, V)
    PassManager.parse(f"speculate{{schedule={schedule},gamma=2}}").run(m)
    c2, c3 = np.zeros(V), np.zeros(V)
    drafted = rejected = verifies = 0
    for seed in range(300):
        rep, _ = simulate(m, RunConfig(prompt=prompt, max_new_tokens=3, temperature=t,
                                       seed=seed, cost_model="roofline",
                                       granularity="stage"))
        c2[rep["tokens"][1]] += 1
        c3[rep["tokens"][2]] += 1
        drafted += sum(rep["drafted_tokens"].values())
        rejected += rep["drafted_tokens"]["rejected"]
        verifies += rep["verifies"]
    if schedule != "none":
        # drafts were verified, and the draft disagrees: residual sampling was exercised
        assert drafted > 0 and verifies > 0 and rejected > 0
    assert chi2_ok(c2, m2) and chi2_ok(c3, m3)


@pytest.mark.parametrize("rounds", ["request", "batch"])
def test_batched_pipeinfer_sampling_matches_target(rounds):
    """PipeInfer with four requests sharing the pipeline (each its own bursts, runs and
    streams): 75 seeded runs x 4 requests; every request's tokens 2 and 3 follow the
    target's distribution, although requests' runs interleave and cancel per request."""
    V, t, prompt, B = 5, 1.0, [1, 2], 4
    m = pair_module("llama-tiny", 0, 1.0, vocab=V, hidden=16, heads=2, kv_heads=1, ffn=32,
                    layers=1)
    m2, m3 = exact_marginals(m, prompt, t, V)
    PassManager.parse(f"speculate{{schedule=pipeinfer,gamma=2,batch={B},rounds={rounds}}}"
                      ).run(m)
    c2, c3 = np.zeros(V), np.zeros(V)
    drafted = rejected = cancelled = 0
    for seed in range(75):
        rep, _ = simulate(m, RunConfig(prompts=[prompt] * B, max_new_tokens=3,
                                       temperature=t, seed=seed, cost_model="roofline",
                                       granularity="stage"))
        for req in rep["requests"]:
            c2[req["tokens"][1]] += 1
            c3[req["tokens"][2]] += 1
        drafted += sum(rep["drafted_tokens"].values())
        rejected += rep["drafted_tokens"]["rejected"]
        cancelled += sum(rep["cancelled_runs"].values())
    assert drafted > 0 and rejected > 0 and cancelled > 0
    assert chi2_ok(c2, m2) and chi2_ok(c3, m3)
