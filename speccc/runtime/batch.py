"""Batched synthetic decoding (`--batch B --acceptance a`): the semantics of the schedule
ops for B requests advancing in lockstep.

One batched draft forward per draft position (B rows), one batched verify of gamma+1
positions per request (B*(gamma+1) rows through the weights; attention and KV per
request), then each request draws its own acceptance (SyntheticBackend's process:
confidence ~ Beta with mean a, a draft is right with that probability, the first wrong
one ends the run). Costs use the mean context length of the batch. The generation is
complete when every request has max_new_tokens.

Programs made of prefill, draft, verify, accept, kv and step ops run batched (the
`none` and `serial` builders); `BATCH_SEMANTICS` names the ops it gives a batched
meaning, and the runner refuses a program with any other op.
"""
from __future__ import annotations

from dataclasses import dataclass

from speccc.runtime.machine import Machine
from speccc.runtime.semantics import SEMANTICS
from speccc.runtime.session import ACCEPTED, REJECTED


@dataclass
class BatchBlock:
    k: int          # tokens drafted per request
    ids: list       # status ids, request-major
    P: int          # mean cached positions when the block was drafted


class BatchMachine(Machine):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lens = [0] * self.batch

    @property
    def generated(self) -> int:
        return min(self.lens)

    @property
    def total_tokens(self) -> int:
        return sum(self.lens)

    def mean_past(self) -> int:
        return self.n_prompt + sum(self.lens) // len(self.lens) - 1

    def advance(self, counts) -> None:
        before = self.lens[0]
        self.lens = [min(self.max_new, n + c) for n, c in zip(self.lens, counts)]
        self.emit_times += [self.engine.now] * (self.lens[0] - before)
        self.committed += [0] * (self.lens[0] - before)
        if self.finished and self.done_time is None:
            self.done_time = self.engine.now


def prefill(m, step, args) -> None:
    n = m.n_prompt
    specs = [m.link("h2d tokens", 8 * n * m.batch),
             *m.costs["target"].forward(n, 0, prefill=True),
             m.link("d2h logits", m.row_bytes)]

    def done(run):
        m.advance([1] * len(m.lens))
        if not m.finished:
            m.complete(step.index)
    m.engine.launch("prefill", "target", specs, done)


def draft(m, step, args) -> None:
    k, P = m.room(step.attrs["tokens"]), m.mean_past()
    ids = list(range(len(m.drafted), len(m.drafted) + k * len(m.lens)))
    m.drafted += ["pending"] * len(ids)
    block = BatchBlock(k, ids, P)
    if k == 0:
        return m.complete(step.index, block)
    cost, specs = m.costs["draft"], []
    for i in range(k):
        T = 2 if i == 0 and m.verifies else 1   # catch up after a full accept
        specs += [m.link("h2d tokens", 8 * m.batch),
                  *cost.forward(T, P + i - (T - 1), prefill=False),
                  m.link("d2h logits", m.row_bytes)]
    m.engine.launch("draft", "draft", specs, lambda run: m.complete(step.index, block))


def verify(m, step, args) -> None:
    block = next((v for v in args if isinstance(v, BatchBlock)), None)
    if block is None or step.attrs.get("kind") == "nonspec":
        block = BatchBlock(0, [], m.mean_past())
    k = block.k
    specs = [m.link("h2d tokens", 8 * (k + 1) * m.batch),
             *m.costs["target"].forward(k + 1, block.P),
             m.link("d2h logits", m.row_bytes * (k + 1))]
    m.engine.launch("verify" if k else "nonspec", "target", specs,
                    lambda run: m.complete(step.index, block))


def accept(m, step, args) -> None:
    block = next(v for v in args if isinstance(v, BatchBlock))
    k, counts = block.k, []
    for b in range(len(m.lens)):
        acc, pos = 0, m.n_prompt + m.lens[b]
        while acc < k and m.backend.draw(pos + acc, b)[1]:
            acc += 1
        lane = block.ids[b * k:(b + 1) * k]
        m.set_status(lane[:acc], ACCEPTED)
        m.set_status(lane[acc:], REJECTED)
        if k:
            m.verifies.append((k, acc))
        counts.append(acc + 1)
    m.advance(counts)
    m.complete(step.index, (k, counts))


def kv(m, step, args) -> None:
    """Target rollback: the mean number of rejected positions per request."""
    src = args[0] if args else None
    if step.attrs["action"] == "rollback" and isinstance(src, tuple) and \
            step.attrs["model"] == m.program.target:
        k, counts = src
        m.kv_op("target", "rollback", sum(k + 1 - c for c in counts) // len(counts) if k else 0)
    m.complete(step.index, src)


BATCH_SEMANTICS = {**SEMANTICS, "spec.prefill": prefill, "spec.draft": draft,
                   "spec.verify": verify, "spec.accept": accept, "spec.kv": kv}
BATCHED_OPS = {"spec.prefill", "spec.draft", "spec.verify", "spec.accept", "spec.kv",
               "spec.step"}


def batch_unsupported(program) -> str:
    """Why `program` cannot run batched ("" when it can)."""
    for s in program.steps:
        if s.name not in BATCHED_OPS:
            return f"a {s.name} op"
        for flag in ("speculative", "chained", "oldest"):
            if s.attrs.get(flag):
                return f"a {s.name} op with {flag} = true"
        if s.attrs.get("wait") is False:
            return f"a {s.name} op with wait = false"
    return ""
