"""Closed-form cost of a calibration GEMV program (cost.gemv_program), without emulation.

    run = closed_form_run(hw, M, K, count, reps, tokens)   # PimRun, or None off-domain

Used only when asked (`speccc run --cost-model targets-fast`, runtime/costs.py): the
default calibration emulates every program (cost.py), and those numbers do not move.

Counts are exact: the listing is walked once with loop multiplicities (no timing), and
each command counts what the scheduler counts for it (scheduler.Scheduler._sig: ACT
banks, MAC bursts and lane MACs, external bursts of WRGB/RDMAC), so bytes and lane MACs
are the emulator's. Energy adds what depends on time: refreshes at the average rate
(their ref_pj and the re-activation of the rows each one closes) and the mode switches.

Time is derived from the timing parameters. Every channel runs the same stream, the
pseudo-channels side by side; per channel the refresh-free work is

    work = runs x (prologue + sum of visits + passes x pass + epilogue)

with one row visit = R*Gt all-bank MACs, tCCD_AB x token_groups(T) apart (a MAC of T
tokens takes ceil(T / mac_lanes) PU clocks); a MAC position that also refills w buffer
slots per pseudo-channel is max(that, pcs*(1+w)*tCMD, w*tBL) apart (command bus, data
bus), over the Gt positions of the refilled segment. Further:
- one bank set: the visit's PRE.ab waits tRTP after its last MAC, the next ACT.ab tRP
  and the next first MAC tRCD_MAC, all serial (gemv.py: "each visit ends with PRE.ab
  and the ACT.ab of the next visit"); in "tiles" order that gap is at least tMACL plus
  the partial sums' RDMAC bursts (accs*T*tRDMAC), and a visit that refills the buffer
  pays the write-to-read turnaround (WL+tBL+tWTR_S) once; which visits refill follows
  gemv.py: every visit in "passes" order, the tile's last pass single-buffered, ceil(T/Q)
  tokens per visit double-buffered;
- two or more sets: the idle set precharges and activates behind the stream, so a
  visit is its MACs alone (the last set's visit refills the next tile);
- "passes" order: each pass drains the MAC pipeline (tMACL) and reads its R*S
  accumulators per token (tRDMAC each on the pseudo-channel's data bus, after tRDL);
- prologue: tile 0's WRGBs (T*Gt bursts, tBL apart) and the first ACT.ab (tRCD_MAC);
  epilogue: the last drain, readout and PREA (tRP).
`runs` = reps x the matrices a channel group holds (cost.gemv_program). Refresh comes at
the average rate, as phase.py charges it: cycles = work / (1 - tRFC/tREFI), refreshes =
work / (tREFI - tRFC) per pseudo-channel; plus the standard's mode switches.

Domain (tests/test_pim_closed_form.py checks every preset x a grid of shapes;
benchmarks/bench_closed_form.py prints the errors): within 5% of the emulator's phase
time and energy when each channel makes at least MIN_VISITS row visits per run (worst
measured 3.9%); shorter programs are dominated by the prologue/epilogue the formula only
approximates (up to 29% off at 1-2 visits), and return None (the caller emulates).
"""
from __future__ import annotations

import math

from speccc.targets.pim.isa import OPS, token_groups, touched_banks
from speccc.targets.pim.listing import Loop

MIN_VISITS = 16


def listing_counts(program, hw) -> dict[str, int]:
    """What the scheduler's counters reach for `program` (without refresh), by walking
    the listing with loop multiplicities."""
    pim = hw.pim
    out = dict(cmds=0, act_banks=0, int_bursts=0, ext_bursts=0, macs=0, pu_elems=0)

    def walk(body, times: int) -> None:
        for node in body:
            if isinstance(node, Loop):
                walk(node.body, times * node.count)
                continue
            spec = OPS.get(node.op)
            if spec is None:                      # SYNC and other non-issuing markers
                continue
            args = dict(node.args)
            out["cmds"] += times
            kind = spec.kind
            sel = args["sel"].const if "sel" in args else 0
            banks = len(touched_banks(pim, spec, 0, 0, sel))
            if kind in ("ACT", "ACTab"):
                out["act_banks"] += times * banks
            elif kind in ("MAC", "MACab"):
                ntok = args["n"].const if "n" in args else 1
                out["int_bursts"] += times * banks
                out["macs"] += times * banks * pim.pu.lanes * ntok
            elif kind in ("RD", "WR", "WRGB"):
                out["ext_bursts"] += times
            elif kind == "RDMAC":
                out["ext_bursts"] += times * pim.rdmac_bursts
            elif kind in ("AF", "EWMUL", "EWADD"):
                out["pu_elems"] += times * pim.pus_per_pc * pim.acc_lanes
    walk(program.body, 1)
    return out


def _spacing(hw, t: dict, mac: int, writes: int) -> int:
    """Cycles between MAC positions that each carry `writes` WRGB bursts per pseudo-
    channel: the MAC rate, the channel's command bus (every pseudo-channel's MAC and
    WRGBs, tCMD each) or the pseudo-channel's data bus (tBL per burst), the slowest."""
    return max(mac, hw.pim.pseudo_channels * (1 + writes) * t["tCMD"], writes * t["tBL"])


def _stream_cycles(hw, pl, t: dict, mac: int, writes: int) -> int:
    """One visit's R*Gt MAC positions, the first Gt (or last Gt) carrying `writes`
    buffer refills each (the listing refills one segment's slots per visit)."""
    n, gt = pl.per_row * pl.tile_slots, pl.tile_slots
    return (n - gt) * mac + gt * (_spacing(hw, t, mac, writes) if writes else mac)


def work_cycles(hw, pl, tokens: int, runs: int) -> float:
    """Refresh-free cycles of `runs` back-to-back GEMV bodies on one channel."""
    from speccc.targets.pim.gemv import double_buffered
    from speccc.targets.pim.timing import timing_values
    t = timing_values(hw)
    mac = t["tCCD_AB"] * token_groups(hw.pim, tokens)
    readout = t["tRDL"] + pl.accs * tokens * t["tRDMAC"]
    Q, NT, S = pl.passes, pl.tiles, pl.sets
    if S > 1:
        # the idle sets precharge/activate behind the stream; the last set's visit
        # refills the next tile (T bursts per MAC of its last segment)
        per_tile = (S - 1) * _stream_cycles(hw, pl, t, mac, 0) \
            + _stream_cycles(hw, pl, t, mac, tokens)
        visits = Q * NT * per_tile
    else:
        gap = t["tRTP"] + t["tRP"] + t["tRCD_MAC"] - mac
        if pl.order == "tiles":
            # the partial sums leave on the data bus while the bank precharges and
            # activates; the next visit's MACs wait for the bus, not the data (tRDL)
            gap = max(gap, t["tMACL"] + readout - t["tRDL"] - mac)
        if pl.order == "passes":
            refilling = [tokens] * Q                     # every visit prefetches
        elif double_buffered(hw, pl, tokens):
            k = -(-tokens // Q)
            refilling = [max(0, min(k, tokens - v * k)) for v in range(Q)]
        else:
            refilling = [0] * (Q - 1) + [tokens]         # the tile's last pass refills
        # a refilling visit's WRGBs share the data bus with the partial sums read out
        # around them: the write-to-read turnaround (WRGB -> RDMAC, tWTR) once per visit
        turn = t["WL"] + t["tBL"] + t["tWTR_S"] if pl.order == "tiles" else 0
        visits = NT * sum(_stream_cycles(hw, pl, t, mac, w) + gap + (turn if w else 0)
                          for w in refilling)
    per_pass = t["tMACL"] + readout if pl.order == "passes" else 0
    prologue = tokens * pl.tile_slots * t["tBL"] + t["tRCD_MAC"]
    epilogue = t["tMACL"] + readout + t["tRP"]
    return runs * (prologue + visits + Q * per_pass + epilogue)


def in_domain(hw, M: int, K: int) -> bool:
    from speccc.targets.pim.layout import plan_matrix
    pl = plan_matrix(hw, M, K)
    return pl.passes * pl.tiles * pl.sets >= MIN_VISITS


def closed_form_run(hw, M: int, K: int, count: int, reps: int, tokens: int = 1):
    """cost.PimRun of cost.gemv_program(hw, M, K, count, reps, tokens) in closed form,
    or None outside the domain (fewer than MIN_VISITS row visits per channel)."""
    from speccc.targets.pim.cost import PimRun, gemv_program
    from speccc.targets.pim.layout import plan_matrix
    from speccc.targets.pim.phase import mode_switch_cycles, mode_switch_energy_pj
    from speccc.targets.pim.standards import standard_for
    from speccc.targets.pim.standards.spec import REFRESH_BLOCKED
    from speccc.targets.pim.timing import evaluate, timing_values
    if reps < 1 or not in_domain(hw, M, K):
        return None
    p, e = hw.pim, hw.energy
    pl = plan_matrix(hw, M, K)
    width = len(pl.channels)
    groups = max(1, min(count, p.channels // width))
    runs = reps * math.ceil(count / groups)
    work = work_cycles(hw, pl, tokens, runs)
    busy, period = REFRESH_BLOCKED[standard_for(hw).refresh]
    vals = timing_values(hw)
    rfc, refi = evaluate(busy, vals), evaluate(period, vals)
    channels = width * groups
    refreshes = work / (refi - rfc) * channels * p.pseudo_channels
    cycles = work / (1 - rfc / refi) + sum(mode_switch_cycles(hw).values())
    c = listing_counts(gemv_program(hw, M, K, count, reps, tokens), hw)
    bits = 8 * p.burst_bytes
    # each REF closes the open rows (every bank set's, one bank per PU) and the
    # scheduler re-activates them (scheduler.py): activations beyond the listing's
    reopened = refreshes * pl.sets * p.pus_per_pc
    energy = ((c["act_banks"] + reopened) * e.act_pj + c["int_bursts"] * bits * e.read_internal_pj_per_bit
              + c["ext_bursts"] * bits * e.external_pj_per_bit + c["macs"] * e.mac_pj
              + c["pu_elems"] * e.pu_op_pj + refreshes * e.ref_pj
              + mode_switch_energy_pj(hw, channels))
    return PimRun(cycles * p.timing.tCK_ns, energy, c["int_bursts"] * p.burst_bytes,
                  c["ext_bursts"] * p.burst_bytes, c["macs"], exact=False)
