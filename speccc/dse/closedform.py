"""Closed-form models of the schedules: expected time and energy of one iteration at a
context length, from per-forward costs (time, energy, NPU-busy and link-busy time).

An iteration of a speculative schedule drafts a block, verifies it, accepts k of γ
tokens with P(k) from the per-position acceptance (α_i: the i-th token of a block is
right given the ones before it are; i.i.d. α is α_i = α) and emits k + 1 tokens;
E = Σ P(k)(k + 1) = (1 − α^(γ+1)) / (1 − α) for i.i.d. α (Leviathan et al.).

Each function is `f(c, g, s) -> Iter`: `c` prices forwards and KV operations at the
iteration's context (`c.fwd(role, T)`, `c.kv(role, action, entries)`), `g` is γ, `s`
the acceptance statistics of γ (`Accept`). The runtime's rules they follow are in
docs/schedules.md; docs/dse.md says which are exact in expectation and which approximate.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fwd:
    """One run's cost: wall time (its tasks back to back), energy, and the time it holds
    the NPU and the host link (shared by draft and target)."""
    ns: float
    pj: float
    npu: float = 0.0
    link: float = 0.0

    def __add__(self, o: "Fwd") -> "Fwd":
        return Fwd(self.ns + o.ns, self.pj + o.pj, self.npu + o.npu, self.link + o.link)

    def __mul__(self, k: float) -> "Fwd":
        return Fwd(self.ns * k, self.pj * k, self.npu * k, self.link * k)


ZERO = Fwd(0.0, 0.0)


@dataclass(frozen=True)
class Accept:
    pk: tuple          # P(k accepted), k = 0..γ
    e: float           # expected tokens per iteration
    var: float         # their variance
    p_all: float       # P(all γ accepted)
    p_guess: float     # P(a speculative next draft survives: all accepted + bonus guess)


def accept_stats(alphas, gamma: int) -> Accept:
    """Acceptance of a γ-token block under per-position α_i (the last repeats)."""
    a = [alphas[min(i, len(alphas) - 1)] for i in range(gamma)]
    pk, run = [], 1.0
    for i in range(gamma):
        pk.append(run * (1 - a[i]))
        run *= a[i]
    pk.append(run)
    e = sum(p * (k + 1) for k, p in enumerate(pk))
    var = sum(p * (k + 1) ** 2 for k, p in enumerate(pk)) - e * e
    return Accept(tuple(pk), e, max(var, 0.0), run, run * alphas[0])


@dataclass(frozen=True)
class Iter:
    ns: float          # expected wall time of one iteration
    pj: float          # expected energy
    tokens: float      # expected tokens emitted per request
    var: float = 0.0   # variance of tokens per iteration


def _none(c, g, s) -> Iter:
    f = c.fwd("target", 1)
    return Iter(f.ns, f.pj, 1.0)


def _expect(s, fn) -> Fwd:
    return sum((fn(k) * p for k, p in enumerate(s.pk) if p > 0), ZERO)


def _serial(c, g, s) -> Iter:
    """γ draft forwards (the first feeds two tokens after a fully accepted block), the
    draft's lazy rollback of its unaccepted tail, one verify of γ+1 positions, the
    target's rollback of γ − k rows (on shared channels it delays the next draft; on a
    split it runs beside it)."""
    d1, d2 = c.fwd("draft", 1), c.fwd("draft", 2)
    draft = d1 * (g - 1) + d1 * (1 - s.p_all) + d2 * s.p_all
    draft += _expect(s, lambda k: c.kv("draft", "rollback", g - 1 - k if k < g else 0))
    verify = c.fwd("target", g + 1)
    rb = _expect(s, lambda k: c.kv("target", "rollback", g - k))
    ns = draft.ns + verify.ns + (rb.ns if c.shared else 0.0)
    return Iter(ns, draft.pj + verify.pj + rb.pj, s.e, s.var)


def _overlap(c, g, s) -> Iter:
    """While the verify runs, the draft drafts γ+1 more tokens (a guess of the bonus,
    then γ) on its own channels; kept with probability p_guess, else cancelled when the
    verify returns and the block drafted afresh. Draft and verify share the NPU and the
    link: the overlapped span is at least either chain and at least their shared time."""
    d1, v = c.fwd("draft", 1), c.fwd("target", g + 1)
    pre = d1 * (g + 1)
    done = min(1.0, v.ns / pre.ns) if pre.ns > 0 else 1.0   # predraft share run by cancel
    span_kept = max(v.ns, pre.ns, v.npu + pre.npu, v.link + pre.link)
    span_lost = max(v.ns, v.npu + pre.npu * done, v.link + pre.link * done)
    p = s.p_guess
    fresh = d1 * g + _expect(s, lambda k: c.kv("draft", "rollback", g - 1 - k if k < g
                                                 else 0))
    rb = _expect(s, lambda k: c.kv("target", "rollback", g - k))
    ns = (1 - p) * fresh.ns + p * span_kept + (1 - p) * span_lost
    pj = v.pj + rb.pj + (1 - p) * fresh.pj + pre.pj * (p + (1 - p) * done)
    return Iter(ns, pj, s.e, s.var)


def _pipeinfer(c, g, s) -> Iter:
    """Approximation: the target runs back to back, chained speculative runs of γ
    positions (the draft hidden beside them), plus a 1-token non-speculative run after
    every rejection; cancelled runs cost the run in progress."""
    v, v1 = c.fwd("target", g), c.fwd("target", 1)
    d = c.fwd("draft", 1) * g
    miss = 1 - s.p_all
    ns = max(v.ns, d.ns) + miss * v1.ns
    pj = v.pj + d.pj + miss * (v1.pj + 0.5 * v.pj)
    return Iter(ns, pj, s.e, s.var)


# schedule -> (closed form, "exact" | "approximate": how docs/dse.md describes it)
FORMS = {"none": (_none, "exact"), "serial": (_serial, "exact"),
         "overlap": (_overlap, "approximate"), "pipeinfer": (_pipeinfer, "approximate")}
