"""Closed-form PIM GEMV cost (targets/pim/closed_form.py) against the emulator.

    python benchmarks/bench_closed_form.py

Per preset, over GEMV shapes x (matrices, repetitions, tokens per row visit): the
emulator's phase time and energy (cost._emulate) vs the closed form's, in the domain
(>= closed_form.MIN_VISITS row visits per channel; goal <= 5%) and, for reference,
outside it (the closed form forced; those shapes are emulated by the fast path). Also the
CPU time of both. Prints the worst error per preset and writes
benchmarks/results/closed_form.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from speccc.hw import load_hw
from speccc.hw.config import preset_names
from speccc.targets.pim import closed_form
from speccc.targets.pim.cost import _emulate
from speccc.targets.pim.layout import plan_matrix

GOAL = 0.05
SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (8192, 1024), (5120, 5120),
          (32000, 4096), (2048, 512), (512, 2048), (1024, 1024), (256, 4096), (128, 700)]


def runs_for(hw) -> list[tuple[int, int, int]]:
    slots = hw.pim.token_slots
    return [(1, 1, 1), (4, 2, 1)] + sorted({(1, 1, t) for t in (2, 3, slots) if 1 < t <= slots})


def main() -> None:
    out = []
    for name in preset_names():
        hw = load_hw(name)
        worst = {"in": 0.0, "out": 0.0}
        cpu = {"emulator": 0.0, "closed_form": 0.0}
        for M, K in SHAPES:
            pl = plan_matrix(hw, M, K)
            inside = closed_form.in_domain(hw, M, K)
            for count, reps, tokens in runs_for(hw):
                t0 = time.process_time()
                exact = _emulate(hw, pl.Mp, pl.Kp, count, reps, tokens)
                t1 = time.process_time()
                keep, closed_form.MIN_VISITS = closed_form.MIN_VISITS, 0   # forced off-domain
                try:
                    fast = closed_form.closed_form_run(hw, pl.Mp, pl.Kp, count, reps, tokens)
                finally:
                    closed_form.MIN_VISITS = keep
                t2 = time.process_time()
                cpu["emulator"] += t1 - t0
                cpu["closed_form"] += t2 - t1
                err = max(abs(fast.ns / exact.ns - 1), abs(fast.energy_pj / exact.energy_pj - 1))
                key = "in" if inside else "out"
                worst[key] = max(worst[key], err)
        out.append({"hw": name, "worst_in_domain": worst["in"],
                    "worst_off_domain": worst["out"], "goal": GOAL,
                    "ratio_to_goal": worst["in"] / GOAL,
                    **{f"cpu_s_{k}": v for k, v in cpu.items()}})
        print(f"{name:14s} worst |time or energy error| in domain {worst['in'] * 100:5.2f}% "
              f"(goal <= {GOAL * 100:.0f}%), off domain {worst['out'] * 100:5.1f}%; CPU "
              f"emulator {cpu['emulator']:.2f} s, closed form {cpu['closed_form']:.2f} s")
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    (res / "closed_form.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
