"""Cold and warm `speccc run --acceptance` on LLaMA-2-7B + LLaMA-68M: CPU seconds.

    python benchmarks/bench_calibration.py [--hw hbm3-pim-x8 aim-gddr6-x4] [--repeats 3]
        [--cost-model targets targets-fast]

The pair is built as bench_speculative.py builds it (zoo presets, fp16, shapes-only:
`speccc zoo llama2-7b --dtype fp16 --shapes-only`). Each case is a fresh `speccc run
--target 7b.onnx --draft 68m.onnx --acceptance 0.8 --hw HW` process; the figure is its
user+sys CPU time (median of --repeats). cold: an empty cache folder (SPECCC_CACHE set to
a new temp dir), so every PIM op cost is calibrated by the emulator; warm: the folder
the cold run filled (calibration read from disk). Goal (issue 16 item 4): cold <= 5 s.
--cost-model: `speccc run --cost-model` per case (targets: every PIM GEMV emulated, the
default; targets-fast: the closed form where its domain holds, targets/pim/closed_form.py).

Prints each figure with its goal and writes benchmarks/results/calibration.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from bench_io import child_cost, write_results  # benchmarks/bench_io.py

COLD_GOAL = 5.0


def cpu_of(argv: list[str], cwd: str, env: dict) -> float:
    return child_cost(argv, cwd, env)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", nargs="+", default=["hbm3-pim-x8"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cost-model", nargs="+", default=["targets"],
                    choices=["targets", "targets-fast"])
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("speccc"))
    out = []
    with tempfile.TemporaryDirectory() as d:
        for name, model in (("7b.onnx", "llama2-7b"), ("68m.onnx", "llama-68m")):
            subprocess.run([exe, "zoo", model, "-o", name, "--dtype", "fp16", "--shapes-only"],
                           cwd=d, check=True, stdout=subprocess.DEVNULL)
        for hw, model in [(h, m) for h in args.hw for m in args.cost_model]:
            argv = [exe, "run", "--target", "7b.onnx", "--draft", "68m.onnx",
                    "--acceptance", "0.8", "--hw", hw, "--cost-model", model]
            cold = []
            for i in range(args.repeats):
                env = {**os.environ, "SPECCC_CACHE": str(Path(d) / f"cache-{hw}-{model}-{i}")}
                env.pop("SPECCC_NO_CACHE", None)
                cold.append(cpu_of(argv, d, env))
            warm = statistics.median(cpu_of(argv, d, env) for _ in range(args.repeats))
            c = statistics.median(cold)
            entries = len(list((Path(env["SPECCC_CACHE"]) / "calibration").glob("*.json")))
            out.append({"hw": hw, "cost_model": model, "cold_cpu_s": c, "warm_cpu_s": warm, "goal_s": COLD_GOAL,
                        "ratio_to_goal": c / COLD_GOAL, "calibration_entries": entries})
            print(f"{hw:14s} {model:12s} cold {c:5.2f} s CPU (goal <= {COLD_GOAL} s: {c / COLD_GOAL:.2f} of "
                  f"it), warm {warm:5.2f} s, {entries} calibrated programs")
    write_results("calibration.json", out)


if __name__ == "__main__":
    main()
