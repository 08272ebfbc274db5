"""The state of one generation and the actions schedule ops are made of.

`Session` holds one `Lane` per request of the batch (its committed tokens, the target's
canonical KV, emission times, verifies), the status of every drafted token, and launches
the engine runs the schedule ops ask for: prefill, a draft, a target run, a KV operation.
A run serves every lane it is given at once (batch B: weights streamed once for B rows;
the lanes' lengths are averaged for pricing). It decides nothing about *when*: that is the
@schedule program (speccc/runtime/machine.py walks it, semantics.py gives each op's
meaning).

Verification is one rule for every schedule: a target run over input positions
[start, start+T) is *valid* when its assumed path agrees with the committed tokens and it
covers the frontier (start <= n-1 < start+T, n = committed length); its inputs beyond the
frontier are draft candidates, checked greedily or by rejection sampling; the result is
the accepted candidates plus one correction/bonus token. Everything else is discarded.
"""
from __future__ import annotations

from speccc.runtime.costs import link_task

PENDING, ACCEPTED, REJECTED, CANCELLED = "pending", "accepted", "rejected", "cancelled"


class Lane:
    """One request: its tokens, the target's canonical cache, its verify outcomes."""

    def __init__(self, index: int, prompt):
        self.index = index
        self.committed = list(prompt)
        self.n_prompt = len(prompt)
        self.emit_times: list[float] = []
        self.canonical = None                 # target KV covering committed[:-1]
        self.verifies: list[tuple] = []       # (candidates m, accepted k) per valid verify
        self.done_time: float | None = None

    @property
    def generated(self) -> int:
        return len(self.committed) - self.n_prompt


class Session:
    def __init__(self, program, engine, backend, costs: dict, hw, prompts, max_new: int,
                 max_context: int | None, logit_bytes: int, vocab: int):
        self.program, self.engine, self.backend, self.costs, self.hw = (
            program, engine, backend, costs, hw)
        self.lanes = [Lane(i, p) for i, p in enumerate(prompts)]
        self.batch = len(self.lanes)
        self.max_new, self.max_context = max_new, max_context
        self.logit_row = logit_bytes * vocab           # one request's logits per position
        self.row_bytes = self.logit_row * self.batch
        self.drafted: list[str] = []          # status of every drafted token
        self.drafted_by: list[int] = []       # the request that drafted it
        self.verifies: list[tuple] = []       # every lane's verifies
        self.done_time: float | None = None
        self.max_confidence = 0.0             # highest draft top-1 probability seen

    # ------------------------------------------------------------ state ----------
    @property
    def lane0(self) -> Lane:
        return self.lanes[0]

    @property
    def finished(self) -> bool:
        return all(self.lane_finished(lane) for lane in self.lanes)

    def lane_finished(self, lane: Lane) -> bool:
        return lane.generated >= self.max_new

    def active(self) -> list[Lane]:
        return [lane for lane in self.lanes if not self.lane_finished(lane)]

    def room(self, lane: Lane, k: int) -> int:
        """Draft tokens that still fit the context after the lane's committed tokens."""
        if self.max_context is None:
            return k
        return max(0, min(k, self.max_context - len(lane.committed)))

    def emit(self, lane: Lane, tokens) -> None:
        tokens = list(tokens)[:self.max_new - lane.generated]
        lane.committed += tokens
        lane.emit_times += [self.engine.now] * len(tokens)
        if self.lane_finished(lane) and lane.done_time is None:
            lane.done_time = self.engine.now
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
        for lm in run.meta.get("lanes", {}).values():
            self.set_status(lm["ids"], CANCELLED)

    def set_status(self, ids, status, only_pending=True) -> None:
        for i in ids:
            if i is not None and (not only_pending or self.drafted[i] == PENDING):
                self.drafted[i] = status

    # ------------------------------------------------------------ launching ------
    def link(self, name: str, nbytes: float):
        return link_task(self.hw, name, nbytes)

    def prefill(self, then) -> None:
        """Target prompt pass (on the NPU); its logits give each lane's first token."""
        outs = [self.backend.prefill(lane.committed, lane.index) for lane in self.lanes]
        n = max(lane.n_prompt for lane in self.lanes)
        specs = [self.link("h2d tokens", 8 * n * self.batch),
                 *self.costs["target"].forward(n, 0, prefill=True),
                 self.link("d2h logits", self.row_bytes)]

        def done(run):
            for lane, (tok, kv) in zip(self.lanes, outs):
                lane.canonical = kv
                self.emit(lane, [tok])
            if not self.finished:
                then()
        self.engine.launch("prefill", "target", specs, done)

    def launch_draft(self, requests, on_done, cutoff: float | None = None,
                     kind: str = "draft", rows: int | None = None, **meta):
        """One draft run for `requests` [(lane, path, k_max)]: each lane drafts up to
        k_max tokens after its path (stopping below `cutoff`, or its own
        `cutoff[lane index]`); forwards of different
        lanes at the same step share one batched forward, priced for `rows` requests
        (default: the whole batch; pipeinfer prices its runs for their own requests)."""
        def stopper(limit):
            def stop(conf) -> bool:
                self.max_confidence = max(self.max_confidence, conf)
                return limit is not None and conf < limit
            return stop
        cost, lanes = self.costs["draft"], {}
        for lane, path, k in requests:
            limit = cutoff.get(lane.index) if isinstance(cutoff, dict) else cutoff
            prop = self.backend.draft(path, k, stopper(limit), lane.index)
            ids = list(range(len(self.drafted), len(self.drafted) + len(prop.tokens)))
            self.drafted += [PENDING] * len(ids)
            self.drafted_by += [lane.index] * len(ids)
            lanes[lane.index] = {"path": list(path), "proposal": prop, "ids": ids}
        props = [lm["proposal"] for lm in lanes.values()]
        rows = rows or self.batch
        specs = cost.kv("rollback", mean([p.rolled_back for p in props], rows), rows)
        for step in range(max(len(p.forwards) for p in props)):
            shapes = [p.forwards[step] for p in props if len(p.forwards) > step]
            T, P = max(t for t, _ in shapes), round(mean([q for _, q in shapes]))
            specs += [self.link("h2d tokens", 8 * T * rows),
                      *cost.forward(T, P, prefill=P == 0, rows=rows),
                      self.link("d2h logits", self.logit_row * rows)]
        return self.engine.launch(kind, "draft", specs, on_done, lanes=lanes, **meta)

    def launch_target(self, kind: str, requests, on_done, pre=(), n_rows: int | None = None,
                      **meta):
        """One target run for `requests` [(lane, start, inputs, base cache, base path,
        ids, qs)]: each lane computes its inputs on its base cache; priced for `n_rows`
        requests (default: the whole batch)."""
        lanes = {}
        for lane, start, inputs, base, base_path, ids, qs in requests:
            rows, state = self.backend.verify(base, start, inputs)
            T = len(inputs)
            lanes[lane.index] = {"start": start, "inputs": list(inputs),
                                 "path": list(base_path) + list(inputs), "rows": rows,
                                 "state": state, "ids": ids or [None] * T,
                                 "qs": qs or [None] * T}
        T = max(len(lm["inputs"]) for lm in lanes.values())
        start = round(mean([lm["start"] for lm in lanes.values()]))
        n_rows = n_rows or self.batch
        specs = [*pre, self.link("h2d tokens", 8 * T * n_rows),
                 *self.costs["target"].forward(T, start, prefill=start == 0, rows=n_rows),
                 self.link("d2h logits", self.logit_row * n_rows * T)]
        return self.engine.launch(kind, "target", specs, on_done, lanes=lanes, **meta)

    def forward_ns(self, role: str, T: int, P: int) -> float:
        """Time of one forward of `role` over T positions after P, with its transfers."""
        specs = [self.link("h2d tokens", 8 * T * self.batch),
                 *self.costs[role].forward(T, P, prefill=P == 0),
                 self.link("d2h logits", self.row_bytes * T)]
        return sum(s.dur for s in specs)

    def kv_op(self, role: str, action: str, entries: float, rows: int | None = None) -> None:
        """A KV operation on `entries` positions per request (the mean over `rows`
        requests, default the batch)."""
        specs = self.costs[role].kv(action, entries, rows)
        if specs:
            self.engine.launch(f"kv_{action}", role, specs)

    # ------------------------------------------------------------ verification ---
    def valid(self, lane: Lane, lm: dict) -> bool:
        n = len(lane.committed)
        start, end = lm["start"], lm["start"] + len(lm["inputs"])
        return start <= n - 1 < end and lm["path"][:n] == lane.committed

    def consume(self, run, lane: Lane):
        """Accept/reject the lane's part of a finished target run; emits and returns the
        tokens, or None when it is invalid (its draft tokens are then cancelled)."""
        m = run.meta["lanes"][lane.index]
        if not self.valid(lane, m):
            self.set_status(m["ids"], CANCELLED)
            return None
        i0 = len(lane.committed) - 1 - m["start"]
        self.set_status(m["ids"][:i0 + 1], ACCEPTED)   # behind the frontier: committed
        cands = m["inputs"][i0 + 1:]
        k, nxt = self.backend.accept(m["rows"], i0, cands, m["qs"][i0 + 1:], lane.index)
        ids = m["ids"][i0 + 1:]
        self.set_status(ids[:k], ACCEPTED)
        self.set_status(ids[k:], REJECTED)
        if cands:
            lane.verifies.append((len(cands), k))
            self.verifies.append((len(cands), k))
        out = list(cands[:k]) + [nxt]
        self.emit(lane, out)
        return out


def mean(values, n: int | None = None) -> float:
    """Mean over `n` lanes (default: the values given); an int when it is one (per-request
    KV entries and batch pricing use it)."""
    total, n = sum(values), n or len(values)
    return total // n if total % n == 0 else total / n
