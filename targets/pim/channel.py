"""Per-channel timing state, and the named views other modules get of it.

The scheduler (scheduler.py) owns and mutates `ChannelState` command by command. The
loop accelerator (steady.py) and the emulator's summary (emulator.py) never index into
its vectors: they ask for a `ChannelSnapshot` (what a loop's iterations can observe,
relative to the channel clock), tell the state to `advance` by whole iterations, or read
`Counters`. Every field has a name; the flat `ready` vector's layout is described by
`ReadyLayout`, which the scheduler builds once per preset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np

class Counters(NamedTuple):
    """Events a channel has issued (energy and utilization are computed from these)."""
    cmds: int
    act_banks: int        # banks activated (an all-bank ACT counts each bank)
    int_bursts: int       # bursts read inside banks by MACs
    ext_bursts: int       # bursts over the external data bus (RD, WR, WRGB, RDMAC)
    macs: int             # lane MACs
    pu_elems: int         # elements through AF / EWMUL / EWADD
    refs: int


COUNTERS = Counters._fields


class HazardSlot(NamedTuple):
    """Which register hazard one entry of the `ready` vector's hazard block gates."""
    level: str            # "slot" or "acc"
    kind: str             # the following command kind it gates
    pc: int
    index: int            # slot / accumulator index within the pseudo-channel


@dataclass(frozen=True)
class ReadyLayout:
    """How the flat `ready` vector is laid out: entries [0, fixed) gate scope nodes
    (channel ... bank, including group nodes), entries [fixed, size) register hazards,
    which a loop snapshot relabels by the loop's slot/acc stride."""
    size: int
    fixed: int
    fixed_kind: tuple[str, ...]           # command kind each scope entry gates ("*": all)
    hazards: tuple[HazardSlot, ...]       # what each hazard entry gates
    base: Mapping[tuple[str, str], int]   # (level, kind) -> first entry of its block
    per_pc: Mapping[str, int]             # nodes of a level per pseudo-channel

    def hazard_entry(self, h: HazardSlot, shift: int = 0) -> int:
        """Position in the hazard block of `h` moved `shift` indices along its level."""
        return self.base[(h.level, h.kind)] - self.fixed + h.pc * self.per_pc[h.level] + h.index + shift


class LoopView(NamedTuple):
    """What a loop's iterations can observe of a channel (from the kinds they issue)."""
    fixed_mask: np.ndarray        # scope entries of those kinds
    hazard_mask: np.ndarray       # hazard entries of those kinds
    activates: bool               # the body ACTs, so tFAW histories matter
    hazard_latency: int           # longest strided register-hazard rule the body starts
    strides: Mapping[str, int]    # slot/acc index advance per iteration


class Hazard(NamedTuple):
    level: str
    kind: str
    pc: int
    index: int            # relabelled to iteration 0 by the loop's stride
    wait: int             # cycles after the clock until it clears


class Observed(NamedTuple):
    ready: bytes                          # scope entries' waits after the clock (>= 0)
    hazards: tuple[Hazard, ...]           # pending register hazards
    windows: tuple                        # tFAW histories relative to the clock


class ChannelSnapshot(NamedTuple):
    clock: int                    # the channel's issue floor (last issue cycle)
    refresh_due: int
    observed: Observed
    open_rows: tuple[int, ...]    # per bank, -1 closed
    counters: tuple[int, ...]     # Counters order


class ChannelState:
    """Earliest issue cycle per (scope node, kind) (`ready`), tFAW histories (`win`),
    open rows, the next refresh due time, completion time and event counters.
    `opened`: (sig id, row) pairs the scheduler has seen open in all their banks since
    `rows` last changed (whoever changes `rows` clears it)."""
    __slots__ = ("floor", "done", "due", "active", "ready", "win", "rows", "cnt", "opened")

    def __init__(self, size: int, nbanks: int, due: int):
        self.floor, self.done, self.due, self.active = 0, 0, due, False
        self.ready = [0] * size
        self.win: dict = {}
        self.rows = [-1] * nbanks
        self.cnt = [0] * len(COUNTERS)
        self.opened: set = set()

    def clone(self) -> "ChannelState":
        c = ChannelState.__new__(ChannelState)
        c.floor, c.done, c.due, c.active = self.floor, self.done, self.due, self.active
        c.ready, c.rows, c.cnt = list(self.ready), list(self.rows), list(self.cnt)
        c.win = {k: list(v) for k, v in self.win.items()}
        c.opened = set()
        return c

    def key(self):
        """Everything that decides future timing (two channels with equal keys behave alike)."""
        return (self.floor, self.done, self.due, self.active, self.ready, self.rows,
                sorted(self.win.items()))

    def counters(self) -> Counters:
        return Counters(*self.cnt)

    def replica(self, onto: "ChannelState", counters_before) -> "ChannelState":
        """This state for another channel `onto` that just did the same work: timing
        copied, `onto`'s counters advanced by what this channel counted since
        `counters_before`."""
        new = self.clone()
        new.cnt = [o + s - b for o, s, b in zip(onto.cnt, self.cnt, counters_before)]
        return new

    def repeat(self, ready_before, counters_before, times: int, period: int) -> None:
        """The stretch that took `ready` from `ready_before` (and the counters from
        `counters_before`) repeats `times` more times, each `period` cycles later."""
        shift = times * period
        self.ready = [x + shift if x != y else x for x, y in zip(self.ready, ready_before)]
        for h in self.win.values():
            h[:] = [x + shift for x in h]
        self.floor += shift
        self.due += shift
        self.cnt = [c + (c - c0) * times for c, c0 in zip(self.cnt, counters_before)]

    # ----------------------------------------------------------- loops ----
    def snapshot(self, layout: ReadyLayout, view: LoopView, iteration: int,
                 win_lat: int) -> ChannelSnapshot:
        """What the loop's next iteration can observe, relative to the channel clock.
        tFAW history entries older than `win_lat` can no longer bind and are clamped."""
        f = self.floor
        arr = np.array(self.ready, dtype=np.int64) - f
        ready = np.maximum(arr[:layout.fixed][view.fixed_mask], 0).tobytes()
        hz = []
        for j in np.flatnonzero((arr[layout.fixed:] > 0) & view.hazard_mask).tolist():
            h = layout.hazards[j]
            hz.append(Hazard(h.level, h.kind, h.pc, h.index - view.strides.get(h.level, 0) * iteration,
                             int(arr[layout.fixed + j])))
        win = ()
        if view.activates:
            win = tuple((key, tuple(max(x - f, -win_lat) for x in h))
                        for key, h in sorted(self.win.items()))
        return ChannelSnapshot(f, self.due, Observed(ready, tuple(hz), win), tuple(self.rows),
                               tuple(self.cnt))

    def advance(self, layout: ReadyLayout, view: LoopView, prev: ChannelSnapshot,
                last: ChannelSnapshot, m: int) -> None:
        """Skip m more iterations of a loop in steady state, whose last two iterations
        ended in `prev` and `last`: the clock, observed waits, tFAW histories, open rows
        and counters move by m times the last step; observed register hazards also move
        by m times the loop's stride, and the vacated ones clear."""
        shift = (last.clock - prev.clock) * m
        old_floor = self.floor
        self.floor += shift
        arr = np.array(self.ready, dtype=np.int64)
        fixed = arr[:layout.fixed]
        fixed[view.fixed_mask] += shift
        hz = arr[layout.fixed:]
        hmask = view.hazard_mask
        moved = np.flatnonzero(hmask & (hz > old_floor)).tolist()
        vals = hz[moved] + shift
        hz[hmask] = np.minimum(hz[hmask], self.floor)
        for j, v in zip(moved, vals.tolist()):
            h = layout.hazards[j]
            j2 = layout.hazard_entry(h, view.strides.get(h.level, 0) * m)
            if v > hz[j2]:
                hz[j2] = v
        self.ready = arr.tolist()
        if view.activates:
            for h in self.win.values():
                h[:] = [x + shift for x in h]
        self.rows = [z + (z - y) * m if z >= 0 else z for y, z in zip(prev.open_rows, last.open_rows)]
        self.opened = set()
        self.cnt = [z + (z - y) * m for y, z in zip(prev.counters, last.counters)]
