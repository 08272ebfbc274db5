"""Token decisions: greedy argmax, or sampling with speculative rejection sampling.

Rejection sampling (Leviathan et al. 2023; Chen et al. 2023): a drafted token d ~ q is
accepted with probability min(1, p(d)/q(d)); at the first rejection the token is drawn
from the residual max(0, p - q) / sum(max(0, p - q)); when every draft is accepted the
bonus token is drawn from the target's next distribution. The output is distributed
exactly as the target's own samples (tests/runtime/test_sampling.py checks it).
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / (temperature if temperature > 0 else 1.0)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """max(0, p - q) normalized; p itself when p <= q everywhere (then p == q)."""
    r = np.maximum(p - q, 0.0)
    s = r.sum()
    return r / s if s > 0 else p


def sample(p: np.ndarray, rng: np.random.Generator) -> int:
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(p) - 1))


def rejection_sample(p_rows, q_rows, drafts, rng) -> tuple[int, int]:
    """(accepted count k, next token): p_rows has len(drafts)+1 target distributions
    (row j for the position of drafts[j]), q_rows the draft's for each draft."""
    for j, d in enumerate(drafts):
        p, q = p_rows[j], q_rows[j]
        if rng.random() * q[d] < p[d]:   # accept with probability min(1, p/q)
            continue
        return j, sample(residual(p, q), rng)
    return len(drafts), sample(p_rows[len(drafts)], rng)


class Decider:
    """Greedy (temperature 0) or sampled decisions, with seeded generators for the draft
    and for the target's accept/reject draws (independent streams)."""

    def __init__(self, temperature: float = 0.0, seed: int = 0, request: int = 0):
        self.temperature = temperature
        lane = [request] if request else []   # request 0 keeps the unbatched streams
        self.rng_target = np.random.Generator(np.random.PCG64([seed, 0, *lane]))
        self.rng_draft = np.random.Generator(np.random.PCG64([seed, 1, *lane]))

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def target_token(self, logits_row) -> int:
        if self.greedy:
            return int(np.argmax(logits_row))
        return sample(softmax(logits_row, self.temperature), self.rng_target)

    def draft_token(self, logits_row):
        """(token, confidence = top-1 probability at temperature 1, q or None)."""
        conf = float(softmax(logits_row).max())
        if self.greedy:
            return int(np.argmax(logits_row)), conf, None
        q = softmax(logits_row, self.temperature)
        return sample(q, self.rng_draft), conf, q

    def accept(self, logit_rows, drafts, qs) -> tuple[int, int]:
        """Rows: target logits for the positions of drafts (+1 for the bonus)."""
        if self.greedy:
            for j, d in enumerate(drafts):
                best = int(np.argmax(logit_rows[j]))
                if best != d:
                    return j, best
            return len(drafts), int(np.argmax(logit_rows[len(drafts)]))
        p_rows = [softmax(r, self.temperature) for r in logit_rows]
        return rejection_sample(p_rows, qs, drafts, self.rng_target)
