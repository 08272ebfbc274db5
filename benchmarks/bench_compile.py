"""`speccc compile` speed through the CLI: LLaMA-2-7B + LLaMA-68M and LLaMA-2-70B + 68M.

    python benchmarks/bench_compile.py [--repeats 3]

Each case is a fresh `speccc compile --shapes-only --bind T=1,P=128` process (models
built once by `speccc zoo ... --dtype fp16`); figures are its user+sys CPU seconds and
wall seconds (median of --repeats; wall moves with machine load, CPU less so). Goals
(issue 16): the 7B pair <= 3 s wall on aim-gddr6; 70B <= 10 s. 70B does not fit any
shipped preset, so it compiles on aim-gddr6 with 16x the rows per bank (a TOML written
here), which changes placement only. Prints each figure with its goal and writes
benchmarks/results/compile.json.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from bench_io import child_cost, write_results  # benchmarks/bench_io.py

HERE = Path(__file__).resolve().parent
CASES = {  # name: (target zoo model, hw, wall goal in s)
    "llama2-7b + llama-68m": ("llama2-7b", "aim-gddr6", 3.0),
    "llama2-70b + llama-68m": ("llama2-70b", "big.toml", 10.0),
}


def big_preset(folder: Path) -> None:
    """aim-gddr6 with 16x the rows per bank, enough for 70B's weights."""
    import speccc.hw
    text = (Path(speccc.hw.__file__).parent / "presets" / "aim-gddr6.toml").read_text()
    text = re.sub(r"(?m)^rows = 16384 .*$", "rows = 262144", text)
    text = re.sub(r'(?m)^name = .*$', 'name = "aim-gddr6-256g"', text)
    (folder / "big.toml").write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("speccc"))
    out = []
    with tempfile.TemporaryDirectory() as d:
        big_preset(Path(d))
        for model in ("llama-68m", *(c[0] for c in CASES.values())):
            subprocess.run([exe, "zoo", model, "-o", f"{model}.onnx", "--dtype", "fp16"],
                           cwd=d, check=True, capture_output=True)
        for name, (model, hw, goal) in CASES.items():
            argv = [exe, "compile", f"{model}.onnx", "--draft", "llama-68m.onnx",
                    "--shapes-only", "--bind", "T=1,P=128", "--hw", hw, "-o", "out"]
            runs = [child_cost(argv, d) for _ in range(args.repeats)]
            cpu = statistics.median(c for c, _ in runs)
            wall = statistics.median(w for _, w in runs)
            out.append({"case": name, "hw": hw, "cpu_s": cpu, "wall_s": wall,
                        "goal_wall_s": goal, "ratio_to_goal": wall / goal})
            print(f"{name:24s} CPU {cpu:5.2f} s  wall {wall:5.2f} s  goal <= {goal:.0f} s wall"
                  f"  ratio {wall / goal:.2f}")
    path = write_results("compile.json", out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
