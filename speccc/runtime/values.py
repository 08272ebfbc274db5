"""The values that flow along a schedule program's edges (semantics.py): a draft's
`Blocks`, an accept's `Accepts`, and `commit`, which turns a finished target run into a
lane's `Accepted`. Apart from semantics.py so burst.py (PipeInfer's loop) shares them
without importing the op handlers that dispatch to it."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Block:
    """One lane's draft tokens to verify, with their status ids and draft distributions."""
    tokens: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    qs: list = field(default_factory=list)


class Blocks(dict):
    """A draft op's result: lane index -> Block (lanes that drafted nothing: empty)."""

    @staticmethod
    def of(run, lanes=()) -> "Blocks":
        out = Blocks({lane.index: Block() for lane in lanes})
        for i, lm in run.meta["lanes"].items():
            out[i] = Block(lm["proposal"].tokens, lm["ids"], lm["proposal"].qs)
        return out


@dataclass
class Accepted:
    run: object
    old: int   # the lane's canonical target cache length before the accept
    n: int     # the lane's committed tokens after it


class Accepts(dict):
    """An accept's result: lane index -> Accepted (lanes whose result was invalid: none)."""


def commit(m, run, lane) -> Accepted | None:
    """Accept/reject the lane's part of a finished target run; its cache becomes
    canonical up to the frontier. None when the run is invalid (nothing committed)."""
    old = lane.canonical.length
    if m.consume(run, lane) is None:
        return None
    n = len(lane.committed)
    lane.canonical = run.meta["lanes"][lane.index]["state"].truncate(n - 1)
    return Accepted(run, old, n)
