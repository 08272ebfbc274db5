"""Synthetic acceptance processes (shapes-only models): whether the draft's token at a
position is right, and the draft's confidence in it.

    IidAcceptance(0.8)                  every position right with probability ~0.8
    PositionalAcceptance([0.9, 0.7])    the i-th token of a block with alpha_i (last repeats)
    ReplayAcceptance(outcomes)          a recorded run's verifies, block by block

IID and positional draws depend only on (seed, request, position[, index in the block]):
every schedule sees the same outcomes (common random numbers) and a position re-drafted
after a rollback gets the same answer, as from a deterministic draft model. Confidence
c ~ Beta(2a, 2(1-a)) (mean a) and the token is right with probability c, so PipeInfer's
cutoff sees an informative confidence. A replay walks recorded (candidates m, accepted k)
verifies — a `speccc run --json` report's `verify_outcomes`, as vLLM-style benchmarks
replay recorded acceptance — one per drafted block: the block's tokens before index k are
right, the rest wrong; its confidence is the recorded per-position acceptance rate.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speccc.errors import SpecccError

CONCENTRATION = 2.0  # confidence ~ Beta(c*a, c*(1-a)): mean a, informative


class PositionalAcceptance:
    def __init__(self, alphas, seed: int = 0):
        self.alphas, self.seed = [float(a) for a in alphas], seed
        self._draws: dict = {}

    def alpha(self, index: int) -> float:
        return self.alphas[min(index, len(self.alphas) - 1)]

    def key(self, request: int, position: int, index: int) -> tuple:
        return (request, position, index)

    def draw(self, request: int, position: int, index: int) -> tuple[float, bool]:
        key = self.key(request, position, index)
        if key not in self._draws:
            rng = np.random.Generator(np.random.PCG64([self.seed, 2, *key]))
            a = self.alpha(index)
            conf = a if a in (0.0, 1.0) else float(rng.beta(CONCENTRATION * a,
                                                             CONCENTRATION * (1 - a)))
            self._draws[key] = (conf, bool(rng.random() < conf))
        return self._draws[key]


class IidAcceptance(PositionalAcceptance):
    def __init__(self, alpha: float, seed: int = 0):
        super().__init__([alpha], seed)

    def key(self, request: int, position: int, index: int) -> tuple:
        return (request, position)   # the index in the block does not matter


class ReplayAcceptance:
    def __init__(self, outcomes, seed: int = 0):
        self.outcomes = [(int(m), int(k)) for m, k in outcomes]
        longest = max(m for m, _ in self.outcomes)
        self.rates = [sum(k > i for m, k in self.outcomes if m > i)
                      / max(1, sum(m > i for m, _ in self.outcomes)) for i in range(longest)]
        self.block = {}   # request -> recorded verifies used so far

    def draw(self, request: int, position: int, index: int) -> tuple[float, bool]:
        if index == 0:
            self.block[request] = self.block.get(request, -1) + 1
        n = self.block.get(request, 0)
        # requests start at different offsets of the record: they are not copies
        _, k = self.outcomes[(n + 7 * request) % len(self.outcomes)]
        rate = self.rates[min(index, len(self.rates) - 1)]
        return rate, index < k


def parse_alphas(text: str) -> list[float]:
    """`--acceptance 0.8` or `--acceptance 0.9,0.8,0.6` (per position in a block)."""
    try:
        alphas = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise SpecccError(f"--acceptance expects a rate or comma-separated rates, got "
                          f"{text!r}") from None
    if not alphas or not all(0.0 <= a <= 1.0 for a in alphas):
        raise SpecccError(f"--acceptance must be in [0, 1] (each rate), got {text!r}")
    return alphas


def load_trace(path) -> list[tuple[int, int]]:
    """Recorded verifies [(candidates, accepted)] from a JSON file: a `speccc run --json`
    report (`verify_outcomes`) or {"verify_outcomes": [[m, k], ...]}."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        out = [(int(m), int(k)) for m, k in data["verify_outcomes"]]
    except OSError as e:
        raise SpecccError(f"cannot read the acceptance trace ({e.strerror})",
                          location=str(path)) from None
    except (ValueError, KeyError, TypeError):
        raise SpecccError("not an acceptance trace: expected JSON with \"verify_outcomes\": "
                          "[[candidates, accepted], ...] (a `speccc run --json` report)",
                          location=str(path)) from None
    if not out or any(not 0 <= k <= m for m, k in out) or all(m == 0 for m, _ in out):
        raise SpecccError("the acceptance trace has no verifies with 0 <= accepted <= "
                          "candidates", location=str(path))
    return out


def acceptance_model(alphas=None, trace=None, seed: int = 0):
    if trace is not None:
        return ReplayAcceptance(trace, seed)
    if len(alphas) == 1:
        return IidAcceptance(alphas[0], seed)
    return PositionalAcceptance(alphas, seed)
