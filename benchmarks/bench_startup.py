"""CLI start-up: CPU seconds before `speccc` does anything.

    python benchmarks/bench_startup.py [--repeats 5]

Each case is a fresh `speccc` process; the figure is its user+sys CPU time (median of
--repeats), so a loaded machine does not inflate it the way wall time would. Goals
(issue 16): `speccc --help` <= 0.3 s; a command before it starts its work <= 0.6 s,
measured as the command with nothing to do (a missing input: it imports what it needs,
then fails on the file). `imports` is what a compile needs before reading the model
(CLI, driver, ONNX importer, every pass, PIM codegen) in one process.

Prints each figure with its goal and writes benchmarks/results/startup.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from bench_io import child_cost, write_results  # benchmarks/bench_io.py

HELP_GOAL, COMMAND_GOAL = 0.3, 0.6
CASES = {
    "--help": ([], HELP_GOAL),
    "--version": (["--version"], HELP_GOAL),
    "compile": (["compile", "missing.onnx"], COMMAND_GOAL),
    "exec": (["exec", "missing.onnx", "--inputs", "missing.npz", "-o", "o.npz"], COMMAND_GOAL),
    "opt": (["opt", "missing.ir"], COMMAND_GOAL),
    "run": (["run", "--target", "missing.onnx", "--draft", "missing.onnx"], COMMAND_GOAL),
    "asm": (["asm", "missing.pim"], COMMAND_GOAL),
    "hw list": (["hw", "list"], COMMAND_GOAL),
    "zoo --list": (["zoo", "--list"], COMMAND_GOAL),
}
IMPORTS = ("import speccc.cli, speccc.driver, speccc.frontend.onnx_import, "
           "speccc.targets.pim.codegen; from speccc.passmanager import all_passes; all_passes()")


def cpu_of(argv: list[str], cwd: str) -> float:
    return child_cost(argv, cwd, check=False)[0]   # commands fail on the missing file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("speccc"))
    out = []
    with tempfile.TemporaryDirectory() as d:
        runs = [(name, [exe, *argv], goal) for name, (argv, goal) in CASES.items()]
        runs.append(("imports", [sys.executable, "-c", IMPORTS], COMMAND_GOAL))
        for name, argv, goal in runs:
            cpu_of(argv, d)                                  # warm the file cache
            s = statistics.median(cpu_of(argv, d) for _ in range(args.repeats))
            out.append({"case": name, "cpu_s": s, "goal_s": goal, "ratio_to_goal": s / goal})
            print(f"speccc {name:10s} {s:5.2f} s CPU (goal <= {goal} s: {s / goal:.2f} of it)")
    write_results("startup.json", out)


if __name__ == "__main__":
    main()
