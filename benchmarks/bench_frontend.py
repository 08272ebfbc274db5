"""Frontend speed: import + canonicalize + fuse of shapes-only real-size models, and
reference execution of zoo models against onnxruntime on the same inputs.

    python benchmarks/bench_frontend.py [--quick]

Prints a table and writes benchmarks/results/frontend.json. Targets (issue 3):
LLaMA-2-7B <= 3 s, LLaMA-2-70B <= 15 s, reference exec <= 3x onnxruntime wall time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from speccc import zoo
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.ir.interpreter import Plan
from speccc.passmanager import PassManager
from bench_io import write_results  # benchmarks/bench_io.py

PIPELINE = "canonicalize,fold,dce,fuse,dce"
TARGETS = {"llama2-7b": 3.0, "llama2-70b": 15.0}


def time_import(name: str, tmp: Path) -> dict:
    path = tmp / f"{name}.onnx"
    zoo.save(zoo.build(name), path)
    t0 = time.perf_counter()
    module = import_model(path, ImportOptions(shapes_only=True))
    t1 = time.perf_counter()
    pm = PassManager.parse(PIPELINE, verify_each=False)
    pm.run(module)
    t2 = time.perf_counter()
    ops = {}
    for op in next(iter(module)).ops():
        ops[op.name] = ops.get(op.name, 0) + 1
    return {"model": name, "import_s": t1 - t0, "passes_s": t2 - t1, "total_s": t2 - t0,
            "target_s": TARGETS.get(name), "ops_after": ops}


def time_exec(name: str, mode: str, t: int, p: int, tmp: Path, repeats: int) -> dict:
    import onnxruntime as ort
    path = tmp / f"{name}-{mode}.onnx"
    zoo.save(zoo.build(name, mode=mode), path)
    feeds = zoo.example_inputs(name, mode, t, p)
    module = import_model(path)
    PassManager.parse(PIPELINE, verify_each=False).run(module)
    plan = Plan(next(iter(module)))  # compiled once, like the onnxruntime session
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours, theirs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = plan.run(feeds)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = sess.run(None, feeds)
        theirs.append(time.perf_counter() - t0)
    names = [o.name for o in sess.get_outputs()]
    err = max(float(np.max(np.abs(out[n] - r)) / max(1.0, float(np.max(np.abs(r)))))
              for n, r in zip(names, ref))
    ratio = statistics.median(ours) / statistics.median(theirs)
    return {"model": name, "mode": mode, "T": t, "P": p, "speccc_s": statistics.median(ours),
            "onnxruntime_s": statistics.median(theirs), "ratio": ratio, "max_rel_err": err,
            "target_ratio": 3.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="7B only, fewer repeats")
    args = ap.parse_args()
    out = {"import": [], "exec": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in (["llama2-7b"] if args.quick else ["llama2-7b", "llama2-70b"]):
            r = time_import(name, tmp)
            out["import"].append(r)
            print(f"import+canonicalize+fuse {name:12s} {r['total_s']:6.2f} s "
                  f"(import {r['import_s']:.2f}, passes {r['passes_s']:.2f}; "
                  f"target <= {r['target_s']} s)")
        for name, mode, t, p in [("llama-tiny", "prefill", 8, 0), ("llama-tiny", "decode", 1, 16),
                                 ("gpt2-tiny", "prefill", 8, 0), ("gpt2-tiny", "decode", 5, 3)]:
            r = time_exec(name, mode, t, p, tmp, 5 if args.quick else 20)
            out["exec"].append(r)
            print(f"reference exec {name:10s} {mode:7s} T={t} P={p}: {r['speccc_s'] * 1e3:7.2f} ms "
                  f"vs onnxruntime {r['onnxruntime_s'] * 1e3:6.2f} ms = {r['ratio']:.2f}x "
                  f"(target <= 3x), max rel err {r['max_rel_err']:.1e}")
    write_results("frontend.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
