"""PipeInfer (SC'24) as its public code runs it (AutonomicPerfectionist/PipeInfer,
examples/speculative/speculative.cpp), over speccc's engine.

The head (host + draft) loops: it consumes finished target runs oldest-first; after every
result that emits tokens it launches a 1-token non-speculative run for the newest token,
then a burst of speculative runs, each drafting on from the previous run's last draft
token (chaining) until a result is waiting, no KV partition is free, a draft yields no
token, or the cutoff p_accept + iter*p_recovery - n_rejected*p_decay reaches 1 (then a
new burst starts at iter 0). Within a run the draft stops when its top-1 probability
falls below the cutoff. A result that emits tokens resets n_rejected and cancels every
in-flight speculative run whose assumed path disagrees or that lies behind the
frontier (mid-run, between ops); invalid non-speculative runs are not cancelled on the
stages (as in the original), their results are dropped. Each speculative run owns a KV
partition: launching copies the speculative cells it builds on into it; accepting copies
its accepted cells into sequence 0 and clears the rest.

One deviation: when a draft yields no token and p_decay is 0, the head waits for the
next result instead of re-drafting the same path (which would give the same answer).
"""
from __future__ import annotations

from collections import deque

from speccc.runtime.controller import Session


class PipeInfer(Session):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.inflight: deque = deque()   # target runs, launch order
        self.free = self.sched.max_inflight
        self.iter = 0
        self.n_rejected = 0
        self.head_busy = False
        self.blocked = False             # last draft gave nothing: wait for a result
        self.dropped: set = set()        # invalid non-speculative runs (not cancelled)

    def start(self) -> None:
        self.prefill(self.newest)

    def cutoff(self) -> float:
        s = self.sched
        return s.p_accept + self.iter * s.p_recovery - self.n_rejected * s.p_decay

    # ---------------------------------------------------------------- head -------
    def newest(self) -> None:
        """Non-speculative run for the newest token, then a fresh burst."""
        c = self.committed
        run = self.launch_target("nonspec", len(c) - 1, [c[-1]], self.canonical, c[:-1],
                                 self.on_result)
        self.inflight.append(run)
        self.iter, self.blocked = 0, False
        self.head()

    def on_result(self, run) -> None:
        if not self.head_busy:
            self.head()

    def head(self) -> None:
        while not self.finished and not self.head_busy:
            if self.inflight and self.inflight[0].done:
                if self.take(self.inflight.popleft()) and not self.finished:
                    return self.newest()
                continue
            if self.free == 0 or self.blocked:
                return
            if self.cutoff() >= 1.0:
                if self.iter == 0:
                    return          # cutoff >= 1 even at iter 0: speculation is off
                self.iter = 0       # burst over; the loop starts the next one
                continue
            tip = self.tip()
            if tip is None:
                return None if self.inflight else self.newest()
            k = self.sched.gamma
            if self.max_context is not None:
                k = min(k, self.max_context - len(tip.meta["path"]))
            if k <= 0:
                return
            self.head_busy = True
            self.launch_draft(tip.meta["path"], k, self.drafted_run, cutoff=self.cutoff(),
                              tip=tip)

    def tip(self):
        """The newest in-flight run still worth chaining on."""
        for run in reversed(self.inflight):
            if not run.cancelled and run not in self.dropped:
                return run
        return None

    def drafted_run(self, drun) -> None:
        self.head_busy = False
        prop, tip = drun.meta["proposal"], drun.meta["tip"]
        if not prop.tokens:
            self.n_rejected += 1
            self.blocked = self.sched.p_decay == 0
        elif not self.finished:
            start = len(tip.meta["path"])
            copy = self.costs["target"].kv("copy", start - self.canonical.length)
            self.free -= 1
            run = self.launch_target("spec", start, prop.tokens, tip.meta["state"],
                                     tip.meta["path"], self.on_result, ids=drun.meta["ids"],
                                     qs=prop.qs, pre=copy)
            self.inflight.append(run)
            self.iter += 1
        self.head()

    # ---------------------------------------------------------------- results ----
    def take(self, run) -> bool:
        """Consume the oldest finished run; True when it emitted tokens."""
        spec = run.kind == "spec"
        if spec:
            self.free += 1
        if run in self.dropped:
            self.dropped.discard(run)
            return False
        old = self.canonical.length
        if self.consume(run) is None:
            return False
        self.n_rejected = 0
        n, state = len(self.committed), run.meta["state"]
        if spec:
            self.kv_op("target", "copy", (n - 1) - old)
        self.kv_op("target", "rollback", state.length - (n - 1))
        self.canonical = state.truncate(n - 1)
        self.check_for_cancel()
        return True

    def check_for_cancel(self) -> None:
        n, c = len(self.committed), self.committed
        for run in list(self.inflight):
            m = run.meta
            path = m["path"]
            k = min(len(path), n)
            behind = m["start"] + len(m["inputs"]) <= n - 1
            if not behind and path[:k] == c[:k]:
                continue
            if run.kind == "spec":
                self.inflight.remove(run)
                self.free += 1
                self.cancel(run, "assumed path disagrees" if not behind else
                            "behind the frontier")
            else:
                self.dropped.add(run)
