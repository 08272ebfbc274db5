"""`spec.burst`: PipeInfer's continuous asynchronous speculation (SC'24) as one loop op,
following its public code (AutonomicPerfectionist/PipeInfer,
examples/speculative/speculative.cpp).

When it fires (after the iteration's non-speculative run for the newest token) a burst
starts at iter 0 and repeats its body — draft from the newest in-flight run still worth
chaining on (the tip), copy the cells it builds on, launch a chained verify that is not
waited for — until a result is waiting (then the burst completes and the accept after it
takes the oldest result), no KV partition is free (`max_inflight`), a draft yields no
token (n_rejected += 1), or the cutoff p_accept + iter*p_recovery - n_rejected*p_decay
reaches 1 (then a new burst starts at iter 0). Within a run the draft stops when its
top-1 probability falls below the cutoff. An accept that commits nothing resumes the
burst; with nothing in flight and no tip the iteration starts over.

A burst runs one request (batch 1): its in-flight queue, tips and partitions are that
request's (`lane0`). This is PipeInfer's mechanism, not a gap to fill: its head keeps one
sequence (id 0 = accepted text, one KV partition of sequence ids per in-flight run),
launches a burst after each result that emits tokens and consumes results oldest-first
through stages that run strictly in launch order. With B requests each would fire bursts
at its own times into that one in-order pipeline, and which request's run goes next, and
whether the cutoff counters are shared, is policy the paper and code do not define; the
batched schedules (none, serial, overlap) run requests in lockstep instead, one verify
of B x (gamma+1) rows. `SINGLE_REQUEST` is the refusal every entry point gives.

One deviation from the original: when a draft yields no token and p_decay is 0, the burst
waits for the next result instead of re-drafting the same path (same answer).
"""
from __future__ import annotations

from speccc.runtime.semantics import Accepts, Blocks, commit, on_result

SINGLE_REQUEST = ("pipeinfer is single-request: PipeInfer's head keeps one sequence (id 0 "
                  "accepted, a KV partition per in-flight run) and consumes its runs "
                  "oldest-first through in-order pipeline stages, and how B requests' bursts "
                  "would share that pipeline is not defined by it (docs/schedules.md); "
                  "batches run in lockstep under none, serial or overlap")


class Burst:
    def __init__(self, program, step):
        a = step.attrs
        self.index = step.index
        self.body = set(program.bodies[step.index])
        self.accept_index = next(s.index for s in program.steps
                                 if s.name == "spec.accept" and step.index in s.operands)
        self.p_accept, self.p_recovery, self.p_decay = (a["p_accept"], a["p_recovery"],
                                                        a["p_decay"])
        self.free = a["max_inflight"]   # KV partitions for speculative runs
        self.draft_step = next(program.steps[i] for i in sorted(self.body)
                               if program.steps[i].name == "spec.draft")
        self.iter = self.n_rejected = 0
        self.busy = self.blocked = False
        self.tip = None
        self.k = 0

    def owns(self, index: int) -> bool:
        return index in self.body

    def cutoff(self) -> float:
        return self.p_accept + self.iter * self.p_recovery - self.n_rejected * self.p_decay

    # ------------------------------------------------------------ the loop ---------
    def start(self, m) -> None:
        self.iter, self.blocked = 0, False
        self.pump(m)

    def pump(self, m) -> None:
        while not m.finished and not self.busy:
            if m.inflight and m.inflight[0].done:
                return m.complete(self.index)        # the accept takes it
            if self.free == 0 or self.blocked:
                return
            if self.cutoff() >= 1.0:
                if self.iter == 0:
                    return          # cutoff >= 1 even at iter 0: speculation is off
                self.iter = 0       # burst over; the loop starts the next one
                continue
            tip = self.newest_tip(m)
            if tip is None:
                return None if m.inflight else m.start_iteration()
            k = self.draft_step.attrs["tokens"]
            if m.max_context is not None:
                k = min(k, m.max_context - len(_lane(tip)["path"]))
            if k <= 0:
                return
            self.busy, self.tip, self.k = True, tip, k
            return m.fire_body(self.index, lambda: self.round_done(m))

    def newest_tip(self, m):
        for run in reversed(m.inflight):
            if not run.cancelled and run not in m.dropped:
                return run
        return None

    def round_done(self, m) -> None:
        self.busy = False
        if not m.values.get(self.draft_step.index)[0].tokens:
            self.n_rejected += 1
            self.blocked = self.p_decay == 0
        elif not m.finished:
            self.iter += 1
        self.pump(m)

    # ------------------------------------------------------------ body ops ---------
    def draft(self, m, step) -> None:
        cutoff = self.cutoff() if step.attrs.get("cutoff") else None
        m.launch_draft([(m.lane0, _lane(self.tip)["path"], self.k)],
                       lambda run: m.complete(step.index, Blocks.of(run)), cutoff=cutoff,
                       tip=self.tip)

    def copy_in(self, m, blocks: Blocks) -> list:
        if not blocks[0].tokens:
            return []
        return m.costs["target"].kv("copy", len(_lane(self.tip)["path"])
                                    - m.lane0.canonical.length)

    def verify(self, m, step, args) -> None:
        block = next(v for v in args if isinstance(v, Blocks))[0]
        copy = next((v for v in args if isinstance(v, list)), [])
        if not block.tokens or m.finished:
            return m.complete(step.index)
        tip = _lane(self.tip)
        self.free -= 1
        run = m.launch_target("spec", [(m.lane0, len(tip["path"]), block.tokens, tip["state"],
                                        tip["path"], block.ids, block.qs)],
                              lambda run: on_result(m), pre=copy)
        m.inflight.append(run)
        m.complete(step.index, run)

    # ------------------------------------------------------------ accept -----------
    def accept_oldest(self, m, step) -> None:
        run = m.inflight.popleft()
        if run.kind == "spec":
            self.free += 1
        if run in m.dropped:
            m.dropped.discard(run)
            return self.resume(m, step)
        accepted = commit(m, run, m.lane0)
        if accepted is None:
            return self.resume(m, step)
        self.n_rejected = 0
        m.complete(step.index, Accepts({0: accepted}))

    def resume(self, m, step) -> None:
        """The accept committed nothing: the burst goes on where it was."""
        m.reopen(step.index)
        m.done.discard(self.index)
        self.pump(m)


def _lane(run) -> dict:
    """The (only) request's part of a run."""
    return run.meta["lanes"][0]
