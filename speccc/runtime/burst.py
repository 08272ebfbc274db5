"""`spec.burst`: PipeInfer's continuous asynchronous speculation (SC'24) as one loop op,
following its public code (AutonomicPerfectionist/PipeInfer,
examples/speculative/speculative.cpp), for one request or a batch of B.

When it fires (after the iteration's non-speculative run for the newest token) a burst
starts at iter 0 and repeats its body — draft from the newest in-flight run still worth
chaining on (the tip), copy the cells it builds on, launch a chained verify that is not
waited for — until a result is waiting (then the burst completes and the accept after it
takes the oldest result), no KV partition is free (`max_inflight`), a draft yields no
token (n_rejected += 1), or the cutoff p_accept + iter*p_recovery - n_rejected*p_decay
reaches 1 (then a new burst starts at iter 0). Within a run the draft stops when its
top-1 probability falls below the cutoff. An accept that commits nothing resumes the
burst; with nothing in flight and no tip the iteration starts over.

Batch B: every request keeps PipeInfer's per-sequence state of its own — `LaneBurst`
(iter, n_rejected, blocked, free KV partitions: `max_inflight` each) and its tips — and
all requests' runs share the one in-order pipeline and in-flight queue, so results are
still consumed oldest-first, one per iteration. With `rounds = "request"` (default)
each round of the body drafts and launches one chained run for one request, chosen
round-robin among the requests that may speculate (a request whose cutoff, partitions or
a draft without tokens stop its burst leaves the bubble to the others); with `rounds =
"batch"` a round drafts for every such request in one draft run and verifies their
blocks in one chained run of that many rows. A result that emits tokens for some
requests restarts their bursts and makes their non-speculative run due; requests due
together share one non-speculative run (one weight pass), as the batched schedules do.
Cancellation is per request: each row is checked against its own request's tokens, and a
run is cancelled once no row of it is valid. Runs are priced for the requests they
serve, not for the whole batch.

One deviation from the original: when a draft yields no token and p_decay is 0, the burst
waits for the next result instead of re-drafting the same path (same answer).
"""
from __future__ import annotations

from speccc.runtime.values import Accepts, Blocks, commit
from speccc.runtime.session import mean


class LaneBurst:
    """One request's burst counters and KV partitions."""

    def __init__(self, free: int):
        self.free = free   # KV partitions for this request's speculative runs
        self.iter = self.n_rejected = 0
        self.blocked = False


class Burst:
    def __init__(self, program, step, lanes):
        a = step.attrs
        self.index = step.index
        self.body = set(program.bodies[step.index])
        self.accept_index = next(s.index for s in program.steps
                                 if s.name == "spec.accept" and step.index in s.operands)
        self.p_accept, self.p_recovery, self.p_decay = (a["p_accept"], a["p_recovery"],
                                                        a["p_decay"])
        self.lanes = {lane.index: LaneBurst(a["max_inflight"]) for lane in lanes}
        self.batched = a.get("rounds", "request") == "batch"
        self.draft_step = next(program.steps[i] for i in sorted(self.body)
                               if program.steps[i].name == "spec.draft")
        self.busy = False
        self.turn = 0          # round-robin: the request considered first next round
        self.round: list = []  # this round's [(request, the run it chains on, k)]

    def owns(self, index: int) -> bool:
        return index in self.body

    def cutoff(self, st: LaneBurst) -> float:
        return self.p_accept + st.iter * self.p_recovery - st.n_rejected * self.p_decay

    # ------------------------------------------------------------ the loop ---------
    def start(self, m, run) -> None:
        """A new iteration: the requests of its non-speculative `run` (those whose last
        result emitted tokens) start a burst."""
        for i in (run.meta["lanes"] if run is not None else ()):
            self.lanes[i].iter, self.lanes[i].blocked = 0, False
        self.pump(m)

    def pump(self, m) -> None:
        while not m.finished and not self.busy:
            if m.inflight and m.inflight[0].done:
                return m.complete(self.index)        # the accept takes it
            restart, ready = [], []
            for lane in self._order(m):
                verdict = self._may_speculate(m, lane)
                if verdict == "restart":
                    restart.append(lane.index)
                elif verdict is not None and (self.batched or not ready):
                    ready.append((lane, *verdict))
            if restart:         # nothing of theirs in flight: a non-speculative run
                m.carry["ns_due"] = set(restart)
                return m.start_iteration()
            if not ready:
                return
            self.busy, self.round = True, ready
            self.turn = (ready[-1][0].index + 1) % m.batch
            return m.fire_body(self.index, lambda: self.round_done(m))

    def _order(self, m) -> list:
        """Requests with work, round-robin from `turn`."""
        return [lane for lane in m.lanes[self.turn:] + m.lanes[:self.turn]
                if not m.lane_finished(lane)]

    def _may_speculate(self, m, lane):
        """(tip, k) when the request can launch a speculative run now; "restart" when
        it has nothing in flight to chain on; None when its burst waits."""
        st = self.lanes[lane.index]
        if st.free == 0 or st.blocked:
            return None
        if self.cutoff(st) >= 1.0:
            if st.iter == 0:
                return None     # cutoff >= 1 even at iter 0: speculation is off
            st.iter = 0         # burst over; the loop starts the next one
            if self.cutoff(st) >= 1.0:
                return None
        tip = self.newest_tip(m, lane)
        if tip is None:
            return None if any(lane.index in r.meta["lanes"] for r in m.inflight) \
                else "restart"
        k = self.draft_step.attrs["tokens"]
        if m.max_context is not None:
            k = min(k, m.max_context - len(self._tip_of(lane, tip)["path"]))
        return (tip, k) if k > 0 else None

    def newest_tip(self, m, lane):
        for run in reversed(m.inflight):
            if (not run.cancelled and lane.index in run.meta["lanes"]
                    and (run, lane.index) not in m.dropped):
                return run
        return None

    def round_done(self, m) -> None:
        self.busy = False
        blocks = m.values.get(self.draft_step.index)
        for lane, _, _ in self.round:
            st = self.lanes[lane.index]
            if not blocks[lane.index].tokens:
                st.n_rejected += 1
                st.blocked = self.p_decay == 0
            elif not m.finished:
                st.iter += 1
        self.pump(m)

    # ------------------------------------------------------------ body ops ---------
    @staticmethod
    def _tip_of(lane, tip) -> dict:
        return tip.meta["lanes"][lane.index]

    def draft(self, m, step) -> None:
        """One draft run for this round's requests (one batched forward per step), each
        stopping below its own request's cutoff."""
        cutoffs = {lane.index: self.cutoff(self.lanes[lane.index])
                   for lane, _, _ in self.round} if step.attrs.get("cutoff") else None
        requests = [(lane, self._tip_of(lane, tip)["path"], k) for lane, tip, k in self.round]
        m.launch_draft(requests, lambda run: m.complete(step.index, Blocks.of(run)),
                       cutoff=cutoffs, tip=self.round[0][1], rows=len(requests))

    def copy_in(self, m, blocks: Blocks) -> list:
        """The cells each request's chained run builds on, into its partition."""
        entries = [len(self._tip_of(lane, tip)["path"]) - lane.canonical.length
                   for lane, tip, _ in self.round if blocks[lane.index].tokens]
        if not entries:
            return []
        return m.costs["target"].kv("copy", mean(entries), rows=len(entries))

    def verify(self, m, step, args) -> None:
        """One chained run over the requests whose draft gave tokens, each row on its
        own request's tip, in a partition of that request."""
        blocks = next(v for v in args if isinstance(v, Blocks))
        copy = next((v for v in args if isinstance(v, list)), [])
        requests = []
        for lane, tip, _ in self.round:
            block, base = blocks[lane.index], self._tip_of(lane, tip)
            if block.tokens:
                requests.append((lane, len(base["path"]), block.tokens, base["state"],
                                 base["path"], block.ids, block.qs))
        if not requests or m.finished:
            return m.complete(step.index)
        for lane, *_ in requests:
            self.lanes[lane.index].free -= 1
        run = m.launch_target("spec", requests, lambda run: on_result(m), pre=copy,
                              n_rows=len(requests))
        m.inflight.append(run)
        m.complete(step.index, run)

    # ------------------------------------------------------------ accept -----------
    def accept_oldest(self, m, step) -> None:
        """Commit the oldest result for each request it serves (unless dropped for it);
        the requests it emitted tokens for get their non-speculative run next."""
        run = m.inflight.popleft()
        accepts = Accepts()
        for i in run.meta["lanes"]:
            if run.kind == "spec":
                self.lanes[i].free += 1
            if (run, i) in m.dropped:
                m.dropped.discard((run, i))
                continue
            lane = m.lanes[i]
            got = None if m.lane_finished(lane) else commit(m, run, lane)
            if got is not None:
                self.lanes[i].n_rejected = 0
                accepts[i] = got
        if not accepts:
            return self.resume(m, step)
        m.carry["ns_due"] = set(accepts)
        m.complete(step.index, accepts)

    def resume(self, m, step) -> None:
        """The accept committed nothing: the burst goes on where it was."""
        m.reopen(step.index)
        m.done.discard(self.index)
        self.pump(m)


def on_result(m) -> None:
    """A target run nobody waits for finished: a burst waiting for results goes on."""
    burst = m.carry.get("burst")
    if burst is not None and not burst.busy:
        burst.pump(m)
