"""Token backends: what the models compute, apart from when (the engine's business).

FunctionalBackend runs @draft and @target with the reference interpreter (`Plan`), with
KV caches the runtime owns: a `KV` is the cache arrays plus the positions they cover;
runs compute on a base cache and return a new one (a per-run partition), truncation is
rollback. SyntheticBackend (shapes-only models, `--acceptance a`) computes nothing: the
true next token is always 0, a draft proposes 0 with probability given by a seeded
confidence draw (mean a) when its path is right, so acceptance follows the requested
process exactly (vLLM/llama.cpp benchmark tools do the same).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from speccc.modelinfo import kv_pairs, logits_output
from speccc.runtime.graph_memo import memo


@dataclass
class Proposal:
    tokens: list
    confs: list
    qs: list                # draft distributions (sampling) or Nones
    forwards: list          # (T, P) of each draft forward
    rolled_back: int        # cached positions dropped before drafting


@dataclass
class KV:
    length: int
    arrays: dict = field(default_factory=dict)   # past name -> array (functional)

    def truncate(self, n: int) -> "KV":
        if n >= self.length:
            return self
        return KV(n, {k: _cut(a, ax, n) for k, (a, ax) in self.arrays.items()})


def _cut(a, axis, n):
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(0, n)
    return a[tuple(idx)], axis


def common_prefix(a, b) -> int:
    """Length of the common prefix (slice comparisons run in C; bisect on mismatch)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:  # invariant: a[:lo] == b[:lo], a[:hi+1] != b[:hi+1]
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _DraftCursor:
    """The draft's cache and the tokens it covers (one per request); rolls back to what a
    new path shares."""

    def __init__(self, backend, lane: int = 0):
        self.backend, self.lane = backend, lane
        self.kv, self.covered = backend.empty("draft"), []

    def propose(self, path, k_max: int, stop) -> Proposal:
        keep = min(common_prefix(self.covered, path), len(path) - 1)
        rolled = len(self.covered) - keep
        self.kv, self.covered = self.kv.truncate(keep), self.covered[:keep]
        feed, out = list(path[keep:]), Proposal([], [], [], [], rolled)
        for _ in range(k_max):
            P = self.kv.length
            tok, conf, q, self.kv = self.backend.draft_step(self.kv, feed, P, path, out,
                                                            self.lane)
            out.forwards.append((len(feed), P))
            self.covered += feed
            if stop(conf):
                break
            out.tokens.append(tok)
            out.confs.append(conf)
            out.qs.append(q)
            path = list(path) + [tok]
            feed = [tok]
        return out


class FunctionalBackend:
    functional = True

    def __init__(self, module, sched, deciders, overrides=None):
        """`overrides`: graph name -> {op: fn} (device numerics: PIM ops through the
        emulator's functional model)."""
        from speccc.ir.interpreter import Plan
        self.deciders = deciders   # one per request (its own random streams)
        self.models = {}
        for role, name in (("target", sched.target), ("draft", sched.draft)):
            if role == "draft" and not sched.speculative:
                continue
            g = module.graphs[name]
            pairs = kv_pairs(g)
            args = {a.result.name: a.result.type for a in g.arguments}
            empty = {}
            for p in pairs:
                t = args[p.past]
                shape = [0 if i == p.axis else (d if isinstance(d, int) else 1)
                         for i, d in enumerate(t.shape)]
                empty[p.past] = (np.zeros(shape, t.dtype.numpy), p.axis)
            if overrides:
                plan = Plan(g, overrides[name])
            else:
                plan = memo(g, ("plan", len(g)), lambda g=g: Plan(g))
            self.models[role] = (plan, pairs, logits_output(g), empty)
        self.cursors = ([_DraftCursor(self, b) for b in range(len(deciders))]
                        if sched.speculative else [])

    def empty(self, role: str) -> KV:
        return KV(0, dict(self.models[role][3]))

    def forward(self, role: str, kv: KV, tokens, start: int):
        plan, pairs, logits, _ = self.models[role]
        T = len(tokens)
        feeds = {"input_ids": np.asarray([tokens], np.int64),
                 "position_ids": np.arange(start, start + T, dtype=np.int64)[None, :]}
        for k, (a, _) in kv.arrays.items():
            feeds[k] = a
        out = plan.run(feeds)
        arrays = {p.past: (out[p.present], p.axis) for p in pairs}
        return out[logits][0], KV(start + T, arrays)

    # -- what the controllers call ------------------------------------------------
    def prefill(self, prompt, lane: int = 0):
        logits, kv = self.forward("target", self.empty("target"), list(prompt), 0)
        return self.deciders[lane].target_token(logits[-1]), kv

    def draft(self, path, k_max: int, stop, lane: int = 0) -> Proposal:
        return self.cursors[lane].propose(path, k_max, stop)

    def draft_step(self, kv, feed, P, path, out, lane: int = 0):
        logits, kv = self.forward("draft", kv, feed, P)
        tok, conf, q = self.deciders[lane].draft_token(logits[-1])
        return tok, conf, q, kv

    def verify(self, base: KV, start: int, inputs):
        return self.forward("target", base, list(inputs), start)

    def accept(self, rows, i0: int, cands, qs, lane: int = 0) -> tuple[int, int]:
        return self.deciders[lane].accept(rows[i0:i0 + len(cands) + 1], cands, qs)


class SyntheticBackend:
    """Shapes-only models: the true next token is always 0, and the draft proposes 0 when
    its path is right and the acceptance process (speccc/runtime/acceptance.py) says its
    token at that position is right."""

    functional = False

    def __init__(self, acceptance, n_prompt: int, batch: int = 1):
        self.acceptance, self.n_prompt = acceptance, n_prompt
        self.cursors = [_DraftCursor(self, b) for b in range(batch)]

    def empty(self, role: str) -> KV:
        return KV(0)

    def draw(self, position: int, request: int = 0, index: int = 0) -> tuple[float, bool]:
        """(confidence, right) of the draft token at `position` on a right path."""
        return self.acceptance.draw(request, position, index)

    def prefill(self, prompt, lane: int = 0):
        return 0, KV(len(prompt))

    def draft(self, path, k_max: int, stop, lane: int = 0) -> Proposal:
        return self.cursors[lane].propose(path, k_max, stop)

    def draft_step(self, kv, feed, P, path, out, lane: int = 0):
        conf, right = self.draw(len(path), lane, len(out.tokens))
        right = right and not any(path[self.n_prompt:])
        return (0 if right else 1), conf, None, KV(P + len(feed))

    def verify(self, base: KV, start: int, inputs):
        return None, KV(start + len(inputs))

    def accept(self, rows, i0: int, cands, qs, lane: int = 0) -> tuple[int, int]:
        k = 0
        while k < len(cands) and cands[k] == 0:
            k += 1
        return k, 0
