"""What a listing costs as one phase of a step, beyond its own timing from cycle 0.

    res = time_phase(program, hw)       # time_program + refresh debt + mode switches

A listing is timed from cycle 0 with every channel's refresh due on the tREFI grid from
its first command (scheduler.py), so a phase shorter than tREFI rarely meets a REF, and
a step of many such phases (a 7B decode step: 289 listings, most well under tREFI) would
run almost refresh-free. The device refreshes on its own clock whatever the phase
boundaries, so on average a channel's banks are blocked tRFC of every tREFI (the
standard's `REFRESH_BLOCKED`). A phase is charged what it missed:

    work   = cycles - tRFC * refreshes seen per channel
    due    = work / (1 - tRFC / tREFI)            # its length with refresh at the average rate
    extra  = max(0, due - cycles)                 # refresh the listing did not see

plus `extra / tRFC` refreshes per active channel (and their ref_pj). A listing that
already met its share (a long GEMV) pays nothing more. This is the average over where
the phase falls on the refresh grid, not a replay on one clock: each listing stays
timed, cached and byte-identical on its own.

A listing that uses PIM-mode commands (spec.PIM_MODE_KINDS) also pays its standard's
mode switches once (`Standard.mode_switch`: entry, HBM-PIM's CRF programming, exit),
serially before and after its work, and their energy (`mode_switch_energy_pj`: each
switch's row activations and host-written bursts, `Overhead.acts`/`bursts`, on every
pseudo-channel of the channels the listing uses; energy_pj["mode_switch"]).
"""
from __future__ import annotations

from dataclasses import replace

from speccc.targets.pim.listing import Loop, Program
from speccc.targets.pim.isa import OPS
from speccc.targets.pim.standards import standard_for
from speccc.targets.pim.standards.spec import PIM_MODE_KINDS, REFRESH_BLOCKED
from speccc.targets.pim.timing import evaluate, timing_values


def uses_pim_mode(program: Program) -> bool:
    def walk(body) -> bool:
        for item in body:
            if isinstance(item, Loop):
                if walk(item.body):
                    return True
            elif item.op in OPS and OPS[item.op].kind in PIM_MODE_KINDS:
                return True
        return False
    return walk(program.body)


def mode_switch_cycles(hw) -> dict[str, int]:
    """The standard's mode switches in cycles, by name (enter, crf, exit)."""
    vals = timing_values(hw)
    return {o.name: evaluate(o.latency, vals, o.name) for o in standard_for(hw).mode_switch}


def mode_switch_energy_pj(hw, channels: int) -> float:
    """Energy of one set of mode switches on `channels` channels: every pseudo-channel
    runs each switch's command sequence (activations at act_pj, written bursts at the
    external bus's pJ/bit)."""
    e, p = hw.energy, hw.pim
    per_pc = sum(o.acts * e.act_pj + o.bursts * 8 * p.burst_bytes * e.external_pj_per_bit
                 for o in standard_for(hw).mode_switch)
    return per_pc * channels * p.pseudo_channels


def refresh_debt(hw, cycles: int, refreshes: int, channels: int) -> tuple[float, float]:
    """(extra cycles, extra REF commands) a phase owes for refresh it did not see."""
    if not channels or not cycles:
        return 0.0, 0.0
    busy, period = REFRESH_BLOCKED[standard_for(hw).refresh]
    vals = timing_values(hw)
    rfc, refi = evaluate(busy, vals), evaluate(period, vals)
    per_pc = hw.pim.pseudo_channels
    seen = refreshes / (channels * per_pc)             # REF rounds per channel
    due = (cycles - rfc * seen) / (1 - rfc / refi)
    extra = max(0.0, due - cycles)
    return extra, extra / rfc * channels * per_pc


def phase_cost(hw, program: Program, res):
    """`res` (time_program's PimResult of `program`) with the phase charges added."""
    extra, refs = refresh_debt(hw, res.cycles, res.refreshes, res.active_channels)
    pim_mode = uses_pim_mode(program)
    switch = sum(mode_switch_cycles(hw).values()) if pim_mode else 0
    cycles = res.cycles + round(extra) + switch
    energy = dict(res.energy_pj)
    energy["refresh"] = energy.get("refresh", 0.0) + refs * hw.energy.ref_pj
    energy["mode_switch"] = (mode_switch_energy_pj(hw, res.active_channels)
                             if pim_mode else 0.0)
    return replace(res, cycles=cycles, ns=cycles * hw.pim.timing.tCK_ns,
                   refreshes=res.refreshes + round(refs), energy_pj=energy)


def time_phase(program: Program, hw, **kw):
    """time_program(program, hw) charged as one phase of a step (refresh debt, mode switches)."""
    from speccc.targets.pim.emulator import time_program
    return phase_cost(hw, program, time_program(program, hw, **kw))
