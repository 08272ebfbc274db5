"""Modeled LLaMA-2-7B step latency per partition policy/mapping, per preset.

    python benchmarks/bench_partition.py [--T 1 5]

Decode step (T=1) and a verify of T=5 positions, P=1024, fp16 shapes-only. Prints a
table (ms) and writes benchmarks/results/bench_partition.json. The numbers are the cost
model's (NPU tiling model, PIM emulator-calibrated GEMVs, DRAM-path NPU<->PIM crossings),
the same ones `speccc compile --partition` and `speccc run` use.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

from speccc import zoo
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.hw import load_hw
from speccc.passes.partition import partition_graph
from speccc.pipeline import run_canonical
from bench_io import write_results  # benchmarks/bench_io.py

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]
CHOICES = [("mincut", None), ("dp", None), ("greedy", None), ("fixed", "specpim"),
           ("fixed", "attacc"), ("fixed", "all-npu"), ("fixed", "all-pim")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[1, 5])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "7b.onnx"
        zoo.save(zoo.build("llama2-7b", dtype="float16", mode="decode"), path)
        base = import_model(path, ImportOptions(shapes_only=True))
    run_canonical(base)
    results = []
    for t in args.T:
        bindings = {"T": t, "P": 1024}
        for preset in PRESETS:
            hw = load_hw(preset)
            row = {"T": t, "hw": preset}
            for policy, mapping in CHOICES:
                g = copy.deepcopy(base).graphs["target"]
                partition_graph(g, hw, bindings, policy=policy, mapping=mapping)
                info = dict(g.attrs["partition"])
                row[mapping or policy] = info["latency_ns"] / 1e6
            results.append(row)
            cells = " ".join(f"{k}={v:.3f}" for k, v in row.items() if k not in ("T", "hw"))
            print(f"T={t} {preset:10s} (ms) {cells}")
    write_results("bench_partition.json", results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
