"""The walker: executes a schedule `Program` on the engine, one op at a time.

The prologue (`spec.prefill`) runs once; then the body repeats: an op fires when every
operand op has completed in this iteration, lowest program index first among those
ready, and `spec.step` starts the next iteration until the generation is complete. What
an op does is its handler's business (semantics.py: one function per op name, looked up
in a table); a handler completes its op at once (a decision, a launch that is not waited
for) or when the engine run it launched finishes. A `spec.burst` fires the ops of its
body itself, round after round (`fire_body`), and is ready once its first operand is.
"""
from __future__ import annotations

from collections import deque

from speccc.runtime.session import Session


class Machine(Session):
    def __init__(self, program, handlers: dict, *args):
        super().__init__(program, *args)
        self.handlers = handlers
        self.steps = program.steps
        self.values: dict[int, object] = {}   # op index -> its result this iteration
        self.done: set[int] = set()
        self.fired: set[int] = set()
        self.live_ops = set(program.prologue) | set(program.body)
        self.carry: dict = {}     # state handlers keep across iterations (by name)
        self.watch: dict = {}     # op index -> callback when it completes (burst rounds)
        self.inflight: deque = deque()   # target runs not waited for (verify wait=false)
        self.dropped: set = set()        # (in-flight run, request) whose result is ignored
        self._pumping = False

    # ------------------------------------------------------------ walking ---------
    def start(self) -> None:
        self._pump()

    def start_iteration(self) -> None:
        keep = set(self.program.prologue)
        self.done &= keep
        self.fired &= keep
        self.values = {i: v for i, v in self.values.items() if i in keep}
        self._pump()

    def complete(self, index: int, value=None) -> None:
        self.values[index] = value
        self.done.add(index)
        cb = self.watch.pop(index, None)
        if cb is not None:
            cb()
        self._pump()

    def reopen(self, *indices: int) -> None:
        """Make ops fire again in this iteration (a burst resumed after an accept that
        committed nothing)."""
        for i in indices:
            self.done.discard(i)
            self.fired.discard(i)
            self.values.pop(i, None)

    def fire_body(self, burst: int, on_round_done) -> None:
        """Fire one round of `burst`'s body; `on_round_done` when its last op completes."""
        body = self.program.bodies[burst]
        self.reopen(*body)
        self.live_ops |= set(body)

        def round_done():
            self.live_ops -= set(body)
            on_round_done()
        self.watch[self.steps[burst].operands[1]] = round_done
        self._pump()

    def _ready(self, i: int) -> bool:
        step = self.steps[i]
        deps = step.operands[:1] if step.name == "spec.burst" else step.operands
        return i not in self.fired and all(d in self.done for d in deps)

    def _pump(self) -> None:
        if self._pumping:    # a handler completed synchronously: the outer loop goes on
            return
        self._pumping = True
        try:
            while True:
                ready = [i for i in sorted(self.live_ops) if self._ready(i)]
                if not ready:
                    return
                i = ready[0]
                self.fired.add(i)
                step = self.steps[i]
                self.handlers[step.name](self, step, [self.values.get(o) for o in step.operands])
        finally:
            self._pumping = False
