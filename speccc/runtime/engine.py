"""Discrete-event engine: runs of tasks over exclusive resources.

A *run* is a chain of tasks (one model forward, a KV operation, a transfer) that execute
one after another. A task holds every resource it names for its whole duration (an NPU
op that streams weights holds the NPU and the channel group the weights live in: a
channel serves PIM or ordinary reads, not both). Tasks with a `stage` additionally run in
launch order per (model, stage): a pipeline stage handles runs one at a time, in order.

Dispatch is work-conserving and non-preemptive: whenever resources free up, ready tasks
start in the order they became ready (ties: earlier-launched run first). `cancel(run)`
drops a run's tasks that have not started; the one running finishes (cancellation
acts between ops). Every executed task becomes a trace slice; its energy is charged
once, on its first resource.
"""
from __future__ import annotations

import bisect
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable


@dataclass(slots=True)
class TaskSpec:
    name: str
    resources: tuple
    dur: float            # ns
    energy: float = 0.0   # pJ
    kind: str = "op"      # op | kv | link
    stage: int = -1       # pipeline stage (ordered per model), -1: none
    args: dict | None = None


class _Task:
    __slots__ = ("spec", "run", "idx", "waits", "succ", "state", "key")

    def __init__(self, spec: TaskSpec, run: "Run", idx: int):
        self.spec, self.run, self.idx = spec, run, idx
        self.waits = 1 if idx else 0  # the previous task of the run
        self.succ: list[_Task] = []   # tasks of other runs waiting on this one
        self.state = "pending"        # pending | ready | running | done | cancelled
        self.key = None


@dataclass(eq=False)
class Run:
    id: int
    kind: str
    model: str
    meta: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)
    on_done: Callable | None = None
    launched: float = 0.0
    finished: float | None = None
    cancelled: bool = False
    slices: list = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.finished is not None


class Engine:
    def __init__(self, resources):
        self.resources = list(resources)
        self.owner: dict = dict.fromkeys(self.resources)
        self.now = 0.0
        self.runs: list[Run] = []
        self.slices: list[dict] = []
        self.instants: list[dict] = []
        self.busy = dict.fromkeys(self.resources, 0.0)
        self._heap: list = []
        self._seq = itertools.count()
        self._ready: list = []
        self._stage_last: dict = {}

    # ------------------------------------------------------------ submission -----
    def launch(self, kind: str, model: str, specs, on_done=None, **meta) -> Run:
        run = Run(len(self.runs), kind, model, meta, on_done=on_done, launched=self.now)
        self.runs.append(run)
        run.tasks = [_Task(s, run, i) for i, s in enumerate(specs)]
        for r in {r for s in specs for r in s.resources}:
            if r not in self.owner:
                raise ValueError(f"unknown resource {r!r}")
        seen = {}
        for t in run.tasks:
            st = t.spec.stage
            if st >= 0 and st not in seen:
                seen[st] = t
                prev = self._stage_last.get((model, st))
                if prev is not None and prev.state not in ("done", "cancelled"):
                    t.waits += 1
                    prev.succ.append(t)
        for st in seen:
            self._stage_last[(model, st)] = [t for t in run.tasks if t.spec.stage == st][-1]
        if not run.tasks:
            self.at(self.now, lambda: self._finish(run))
        elif run.tasks[0].waits == 0:
            self._make_ready(run.tasks[0])
        return run

    def at(self, t: float, fn: Callable) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), fn))

    def cancel(self, run: Run, reason: str = "") -> None:
        if run.done or run.cancelled:
            return
        run.cancelled = True
        where = set()
        for t in run.tasks:
            if t.state in ("pending", "ready"):
                if t.state == "ready":
                    self._ready.remove(t)
                t.state = "cancelled"
                where.update(t.spec.resources)
                self._release(t)
            elif t.state == "running":
                where.update(t.spec.resources)
        for s in run.slices:
            s["cancelled"] = True
        for r in sorted(where, key=self.resources.index):
            self.instants.append({"resource": r, "time": self.now, "run": run.id,
                                  "name": f"cancel r{run.id}", "reason": reason})
        if not any(t.state == "running" for t in run.tasks):
            run.finished = self.now

    # ------------------------------------------------------------ execution ------
    def run(self, until: Callable[[], bool] | None = None) -> None:
        heap = self._heap
        self._dispatch()
        while heap:
            t = heap[0][0]
            self.now = t
            while heap and heap[0][0] == t:
                heapq.heappop(heap)[2]()
            self._dispatch()
            if until is not None and until():
                break

    def _make_ready(self, task: _Task) -> None:
        task.state = "ready"
        task.key = (self.now, task.run.id, task.idx)
        bisect.insort(self._ready, task, key=lambda x: x.key)

    def _dispatch(self) -> None:
        owner, i = self.owner, 0
        while i < len(self._ready):
            task = self._ready[i]
            res = task.spec.resources
            if all(owner[r] is None for r in res):
                del self._ready[i]
                task.state = "running"
                for r in res:
                    owner[r] = task
                start = self.now
                self.at(start + task.spec.dur, lambda task=task, start=start:
                        self._end(task, start))
            else:
                i += 1

    def _end(self, task: _Task, start: float) -> None:
        spec, run = task.spec, task.run
        task.state = "done"
        for j, r in enumerate(spec.resources):
            self.owner[r] = None
            self.busy[r] += spec.dur
            s = {"resource": r, "name": f"{spec.name} r{run.id}", "op": spec.name,
                 "start": start, "end": self.now, "run": run.id, "run_kind": run.kind,
                 "model": run.model, "kind": spec.kind, "energy_pj": spec.energy if j == 0
                 else 0.0, "cancelled": run.cancelled, "args": spec.args or {}}
            self.slices.append(s)
            run.slices.append(s)
        self._release(task)
        nxt = task.idx + 1
        if nxt < len(run.tasks) and run.tasks[nxt].state == "pending":
            self._wake(run.tasks[nxt])
        elif nxt >= len(run.tasks) or run.cancelled:
            self._finish(run)

    def _release(self, task: _Task) -> None:
        for s in task.succ:
            if s.state == "pending":
                self._wake(s)

    def _wake(self, task: _Task) -> None:
        task.waits -= 1
        if task.waits == 0:
            self._make_ready(task)

    def _finish(self, run: Run) -> None:
        if run.finished is not None and not run.cancelled:
            return
        run.finished = self.now
        if not run.cancelled and run.on_done is not None:
            run.on_done(run)

    # ------------------------------------------------------------ results --------
    @property
    def energy_pj(self) -> float:
        return sum(s["energy_pj"] for s in self.slices)

    def utilization(self, horizon: float) -> dict[str, float]:
        return {r: (b / horizon if horizon > 0 else 0.0) for r, b in self.busy.items()}
