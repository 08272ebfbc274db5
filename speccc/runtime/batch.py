"""Batched synthetic decoding (`--batch B --acceptance a`, schedules none and serial).

B requests advance in lockstep: one batched draft forward per draft position (B rows),
one batched verify of gamma+1 positions per request (B*(gamma+1) rows through the
weights; attention and KV per request), then each request draws its own acceptance
(the synthetic process of SyntheticBackend: confidence ~ Beta with mean a, a draft is
right with that probability, the first wrong one ends the run). Costs use the mean
context length of the batch. Stops when every request has max_new_tokens.
"""
from __future__ import annotations

from speccc.runtime.controller import ACCEPTED, REJECTED, Session


class BatchSerial(Session):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lens = [0] * self.sched.batch

    @property
    def generated(self) -> int:
        return min(self.lens)

    @property
    def total_tokens(self) -> int:
        return sum(self.lens)

    def start(self) -> None:
        n = self.n_prompt
        specs = [self.link("h2d tokens", 8 * n * self.sched.batch),
                 *self.costs["target"].forward(n, 0, prefill=True),
                 self.link("d2h logits", self.row_bytes)]
        self.engine.launch("prefill", "target", specs, lambda r: self.advance([1] * len(
            self.lens), 0))

    def advance(self, counts, k: int) -> None:
        before = self.lens[0]
        self.lens = [min(self.max_new, n + c) for n, c in zip(self.lens, counts)]
        self.emit_times += [self.engine.now] * (self.lens[0] - before)
        self.committed += [0] * (self.lens[0] - before)
        rejected = sum(k + 1 - c for c in counts) // len(counts) if k else 0
        self.kv_op("target", "rollback", rejected)
        if self.finished:
            self.done_time = self.engine.now
            return
        self.step()

    def step(self) -> None:
        k = self.room(self.sched.gamma) if self.sched.speculative else 0
        P = self.n_prompt + sum(self.lens) // len(self.lens) - 1
        specs = []
        if k:
            cost = self.costs["draft"]
            for i in range(k):
                T = 2 if i == 0 and self.verifies else 1   # catch up after full accept
                specs += [self.link("h2d tokens", 8 * self.sched.batch),
                          *cost.forward(T, P + i - (T - 1), prefill=False),
                          self.link("d2h logits", self.row_bytes)]
        ids = list(range(len(self.drafted), len(self.drafted) + k * len(self.lens)))
        self.drafted += ["pending"] * len(ids)
        tspecs = [self.link("h2d tokens", 8 * (k + 1) * self.sched.batch),
                  *self.costs["target"].forward(k + 1, P),
                  self.link("d2h logits", self.row_bytes * (k + 1))]

        def verified(run):
            counts = []
            for b in range(len(self.lens)):
                acc, pos = 0, self.n_prompt + self.lens[b]
                while acc < k and self.backend.draw(pos + acc, b)[1]:
                    acc += 1
                lane = ids[b * k:(b + 1) * k]
                self.set_status(lane[:acc], ACCEPTED)
                self.set_status(lane[acc:], REJECTED)
                if k:
                    self.verifies.append((k, acc))
                counts.append(acc + 1)
            self.advance(counts, k)

        def drafted(run):
            self.engine.launch("verify" if k else "nonspec", "target", tspecs, verified)
        if k:
            self.engine.launch("draft", "draft", specs, drafted)
        else:
            drafted(None)
