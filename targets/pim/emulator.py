"""PIM emulator: timing (scheduler.py) + functional (functional.py) + energy.

    emu = PimEmulator(load_hw("aim-gddr6"), mode="device")
    emu.load_image(placement.image); emu.set_input(stream)
    result = emu.run(program)                 # PimResult: cycles, ns, bytes, energy ...
    y = emu.state.host_out[dst]

Order of work in `run`: operand range checks against the preset, the timing pass (bank
state legality is checked there, so illegal programs fail with a located SpecccError
before any value is computed), then the functional pass if asked. Energy is
sum(events x preset energies); `energy_pj` breaks it down by component.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from speccc.targets.pim.functional import FunctionalState
from speccc.targets.pim.isa import OPS
from speccc.targets.pim.listing import (MAX_COMMANDS, Program, check_ranges, check_work,
                                        format_command, cmd as make_cmd)
from speccc.targets.pim.scheduler import COUNTERS, Scheduler, TraceEntry


@dataclass
class PimResult:
    hw: str
    cycles: int
    ns: float
    commands: int
    refreshes: int
    activations: int
    bytes_internal: int
    bytes_external: int
    lane_macs: int
    energy_pj: dict[str, float]
    channel_utilization: list[float]
    active_channels: int = 0          # channels the program used
    trace: list[TraceEntry] | None = field(default=None, repr=False)

    @property
    def energy_total_pj(self) -> float:
        return sum(self.energy_pj.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("trace")
        d["energy_total_pj"] = self.energy_total_pj
        return d


def summarize(hw, sched: Scheduler) -> PimResult:
    p, e = hw.pim, hw.energy
    per_ch = [st.counters() for st in sched.chans]
    c = {name: sum(getattr(k, name) for k in per_ch) for name in COUNTERS}
    cycles = sched.cycles()
    ns = cycles * p.timing.tCK_ns
    bits = 8 * p.burst_bytes
    energy = {
        "activate": c["act_banks"] * e.act_pj,
        "internal_read": c["int_bursts"] * bits * e.read_internal_pj_per_bit,
        "external_io": c["ext_bursts"] * bits * e.external_pj_per_bit,
        "mac": c["macs"] * e.mac_pj,
        "pu_ops": c["pu_elems"] * e.pu_op_pj,
        "refresh": c["refs"] * e.ref_pj,
    }
    peak_ch = hw.derived()["peak_internal_gbs_per_channel"]      # bytes per ns
    util = [round(k.int_bursts * p.burst_bytes / (peak_ch * ns), 6) if ns else 0.0
            for k in per_ch]
    return PimResult(hw=hw.name, cycles=cycles, ns=ns, commands=c["cmds"],
                     refreshes=c["refs"], activations=c["act_banks"],
                     bytes_internal=c["int_bursts"] * p.burst_bytes,
                     bytes_external=c["ext_bursts"] * p.burst_bytes, lane_macs=c["macs"],
                     energy_pj=energy, channel_utilization=util,
                     active_channels=sum(st.active for st in sched.chans),
                     trace=sched.trace if sched.record else None)


class PimEmulator:
    """timing=False: `run` computes values only (no scheduler pass: no bank-state checks,
    returns None), what `exec --on emulator` wants unless asked to time. `timings`: a list
    that every timed run appends (program name, PimResult) to. `engine`: the functional
    engine ("loop" vectorised, "command" the per-command oracle; functional.py).
    `compiled`: the timing engine's numba loop when nothing is accelerated (scheduler.py)."""

    def __init__(self, hw, *, mode: str = "device", refresh: bool = True,
                 accelerate: bool = True, timing: bool = True, timings: list | None = None,
                 engine: str | None = None, compiled: bool | None = None):
        self.hw, self.refresh, self.accelerate = hw, refresh, accelerate
        self.compiled = compiled
        self.timing, self.timings = timing, timings
        self.state = FunctionalState(hw, mode, engine)
        self._checked: dict = {}    # id -> (program, its work estimate): ranges passed

    def _check(self, program: Program, max_commands: int) -> None:
        """Range and work checks, once per Program object (listings are immutable; the
        entry keeps the program alive, so its id is never reused)."""
        seen = self._checked.get(id(program))
        if seen is not None and seen[0] is program and seen[1] <= max_commands:
            return
        check_ranges(program, self.hw)
        work = check_work(program, max_commands)  # from loop counts, before any issue
        self._checked[id(program)] = (program, work)

    def load_image(self, image: dict) -> None:
        self.state.load_image(image)

    @property
    def outputs(self) -> dict:
        """Host outputs written by RD / RDMAC, keyed by `dst`."""
        return self.state.host_out

    def set_input(self, data) -> None:
        self.state.set_input(data)

    def run(self, program: Program, *, functional: bool = True, record: bool = False,
            max_commands: int = MAX_COMMANDS) -> PimResult | None:
        self._check(program, max_commands)
        if not self.timing:
            self.state.run(program)
            return None
        sched = Scheduler(self.hw, refresh=self.refresh, accelerate=self.accelerate,
                          record=record, name=program.name, compiled=self.compiled)
        sched.run(program)
        if functional:
            self.state.run(program)
        result = summarize(self.hw, sched)
        if self.timings is not None:
            self.timings.append((program.name, result))
        return result


def time_program(program: Program, hw, *, refresh: bool = True, accelerate: bool = True,
                 record: bool = False, max_commands: int = MAX_COMMANDS,
                 compiled: bool | None = None) -> PimResult:
    """Timing and energy only (no values). accelerate=False issues one step per command,
    in numba when installed unless compiled=False (the pure-Python oracle)."""
    return PimEmulator(hw, refresh=refresh, accelerate=accelerate, compiled=compiled).run(
        program, functional=False, record=record, max_commands=max_commands)


def format_trace(trace: list[TraceEntry], hw_name: str | None = None) -> str:
    """A cycle-stamped flat listing of an issued trace (parseable; `asm --check` input).
    Controller-injected refresh commands carry the comment `# auto`."""
    lines = [f".hw {hw_name}"] if hw_name else []
    for e in trace:
        if e.op == "SYNC":
            lines.append(f"@{e.cycle} SYNC")
            continue
        spec = OPS[e.op]
        ops = {k: v for k, v in e.args.items() if k in spec.required + spec.optional}
        c = make_cmd(e.op, stamp=e.cycle, comment=" auto" if e.auto else None, **ops)
        lines.append(format_command(c))
    return "\n".join(lines) + "\n"


def perfetto_trace(trace: list[TraceEntry], hw) -> dict:
    """Chrome/Perfetto trace-event JSON of an issued trace: one track per channel and
    pseudo-channel, one slice per command lasting until its completion."""
    from speccc.targets.pim.timing import completion_latency
    lat, tck = completion_latency(hw), hw.pim.timing.tCK_ns
    events = []
    for e in trace:
        if e.op == "SYNC":
            events.append({"name": "SYNC", "ph": "i", "s": "g", "ts": e.cycle * tck / 1000,
                           "pid": 0, "tid": 0})
            continue
        ch = e.args["ch"]
        pc = e.args["bank"] // hw.pim.banks_per_pc if "bank" in e.args else e.args.get("pc", 0)
        events.append({"name": e.op, "ph": "X", "ts": e.cycle * tck / 1000,
                       "dur": lat[OPS[e.op].kind] * tck / 1000, "pid": ch, "tid": pc,
                       "args": {**e.args, "line": e.line, "auto": e.auto}})
    return {"traceEvents": events, "displayTimeUnit": "ns"}
