"""The state of one generation and the actions schedule ops are made of.

`Session` holds the committed tokens, the target's canonical KV, the status of every
drafted token and the emission times, and launches the engine runs the schedule ops ask
for (prefill, a draft, a target run, a KV operation). It decides nothing about *when*:
that is the @schedule program (speccc/runtime/machine.py walks it, semantics.py gives
each op's meaning).

Verification is one rule for every schedule: a target run over input positions
[start, start+T) is *valid* when its assumed path agrees with the committed tokens and it
covers the frontier (start <= n-1 < start+T, n = committed length); its inputs beyond the
frontier are draft candidates, checked greedily or by rejection sampling; the result is
the accepted candidates plus one correction/bonus token. Everything else is discarded.
"""
from __future__ import annotations

from speccc.runtime.costs import link_task

PENDING, ACCEPTED, REJECTED, CANCELLED = "pending", "accepted", "rejected", "cancelled"


class Session:
    def __init__(self, program, engine, backend, costs: dict, hw, prompt, max_new: int,
                 max_context: int | None, logit_bytes: int, vocab: int):
        self.program, self.engine, self.backend, self.costs, self.hw = (
            program, engine, backend, costs, hw)
        self.batch = program.batch
        self.committed = list(prompt)
        self.n_prompt, self.max_new, self.max_context = len(prompt), max_new, max_context
        self.row_bytes = logit_bytes * vocab * program.batch
        self.emit_times: list[float] = []
        self.drafted: list[str] = []          # status of every drafted token
        self.verifies: list[tuple] = []       # (candidates m, accepted k) per valid verify
        self.canonical = None                 # target KV covering committed[:-1]
        self.done_time: float | None = None
        self.max_confidence = 0.0             # highest draft top-1 probability seen

    # ------------------------------------------------------------ state ----------
    @property
    def generated(self) -> int:
        return len(self.committed) - self.n_prompt

    @property
    def finished(self) -> bool:
        return self.generated >= self.max_new

    def room(self, k: int) -> int:
        """Draft tokens that still fit the context after the committed tokens."""
        if self.max_context is None:
            return k
        return max(0, min(k, self.max_context - len(self.committed)))

    def emit(self, tokens) -> None:
        tokens = list(tokens)[:self.max_new - self.generated]
        self.committed += tokens
        self.emit_times += [self.engine.now] * len(tokens)
        if self.finished and self.done_time is None:
            self.done_time = self.engine.now
            self.stop()

    def stop(self) -> None:
        """Generation is complete: cancel whatever is still in flight."""
        for run in self.engine.runs:
            if not run.done:
                self.cancel(run, "generation complete")

    def cancel(self, run, reason: str) -> None:
        self.engine.cancel(run, reason)
        self.set_status(run.meta.get("ids", ()), CANCELLED)

    def set_status(self, ids, status, only_pending=True) -> None:
        for i in ids:
            if i is not None and (not only_pending or self.drafted[i] == PENDING):
                self.drafted[i] = status

    # ------------------------------------------------------------ launching ------
    def link(self, name: str, nbytes: float):
        return link_task(self.hw, name, nbytes)

    def prefill(self, then) -> None:
        """Target prompt pass (on the NPU); its logits give the first token."""
        prompt = self.committed
        tok, kv = self.backend.prefill(prompt)
        specs = [self.link("h2d tokens", 8 * len(prompt) * self.batch),
                 *self.costs["target"].forward(len(prompt), 0, prefill=True),
                 self.link("d2h logits", self.row_bytes)]

        def done(run):
            self.canonical = kv
            self.emit([tok])
            if not self.finished:
                then()
        self.engine.launch("prefill", "target", specs, done)

    def launch_draft(self, path, k_max: int, on_done, cutoff: float | None = None,
                     kind: str = "draft", **meta):
        def stop(conf) -> bool:
            self.max_confidence = max(self.max_confidence, conf)
            return cutoff is not None and conf < cutoff
        prop = self.backend.draft(path, k_max, stop)
        cost = self.costs["draft"]
        specs = cost.kv("rollback", prop.rolled_back)
        for T, P in prop.forwards:
            specs += [self.link("h2d tokens", 8 * T * self.batch),
                      *cost.forward(T, P, prefill=P == 0),
                      self.link("d2h logits", self.row_bytes)]
        ids = list(range(len(self.drafted), len(self.drafted) + len(prop.tokens)))
        self.drafted += [PENDING] * len(ids)
        return self.engine.launch(kind, "draft", specs, on_done, path=list(path),
                                  proposal=prop, ids=ids, **meta)

    def launch_target(self, kind: str, start: int, inputs, base, base_path, on_done,
                      ids=None, qs=None, pre=(), **meta):
        rows, state = self.backend.verify(base, start, inputs)
        T = len(inputs)
        specs = [*pre, self.link("h2d tokens", 8 * T * self.batch),
                 *self.costs["target"].forward(T, start, prefill=start == 0),
                 self.link("d2h logits", self.row_bytes * T)]
        return self.engine.launch(kind, "target", specs, on_done, start=start,
                                  inputs=list(inputs), path=list(base_path) + list(inputs),
                                  rows=rows, state=state, ids=ids or [None] * T,
                                  qs=qs or [None] * T, **meta)

    def kv_op(self, role: str, action: str, entries: int) -> None:
        specs = self.costs[role].kv(action, entries)
        if specs:
            self.engine.launch(f"kv_{action}", role, specs)

    # ------------------------------------------------------------ verification ---
    def valid(self, run) -> bool:
        n, m = len(self.committed), run.meta
        start, end = m["start"], m["start"] + len(m["inputs"])
        return start <= n - 1 < end and m["path"][:n] == self.committed

    def consume(self, run):
        """Accept/reject a finished target run; emits and returns the tokens, or None
        when the run is invalid (its draft tokens are then cancelled)."""
        m = run.meta
        if not self.valid(run):
            self.set_status(m["ids"], CANCELLED)
            return None
        i0 = len(self.committed) - 1 - m["start"]
        self.set_status(m["ids"][:i0 + 1], ACCEPTED)   # behind the frontier: committed
        cands = m["inputs"][i0 + 1:]
        k, nxt = self.backend.accept(m["rows"], i0, cands, m["qs"][i0 + 1:])
        ids = m["ids"][i0 + 1:]
        self.set_status(ids[:k], ACCEPTED)
        self.set_status(ids[k:], REJECTED)
        if cands:
            self.verifies.append((len(cands), k))
        out = list(cands[:k]) + [nxt]
        self.emit(out)
        return out
