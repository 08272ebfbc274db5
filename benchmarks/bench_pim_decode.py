"""A whole LLaMA-2-7B decode step (shapes-only, T=1, P=1024) through `speccc compile`.

    python benchmarks/bench_pim_decode.py                 # aim-gddr6, hbm3-pim, hbm-pim
    python benchmarks/bench_pim_decode.py --preset aim-gddr6

Every linear, attention and gated_mlp op is placed on PIM (the default mapping), lowered to
listings and timed by the PIM emulator; the rest (norms, rope, residual adds) gets the
NPU cost model. Per preset: compile wall seconds (import + pipeline + place + lowering +
timing + writing; target < 5 s), listing bytes (target < 2 MB), simulated time of the
step (PIM phases and NPU ops in series), energy, and per-op-kind time and efficiency
(achieved vs the op's roofline, see targets/pim/codegen.roofline). hbm-pim (4 GiB) cannot
hold the 12.6 GiB of fp16 weights: its entry is the capacity error compile reports.
Results are printed as JSON and written to benchmarks/results/bench_pim_decode.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from speccc import driver, zoo
from speccc.errors import SpecccError
from bench_io import write_results  # benchmarks/bench_io.py

PRESETS = ["aim-gddr6", "hbm3-pim", "hbm-pim"]
BIND = {"T": 1, "P": 1024}
RESULTS = "bench_pim_decode.json"
WALL_TARGET_S, LISTING_TARGET_BYTES = 5.0, 2_000_000


def bench(model: Path, hw: str, workdir: Path) -> dict:
    out = workdir / f"out-{hw}"
    t0 = time.perf_counter()
    try:
        report, pm = driver.compile_model(model, out, BIND, None, True, hw=hw)
    except SpecccError as err:
        return {"fits": False, "error": str(err), "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    listings = sorted((out / "pim").rglob("*.pim"))
    nbytes = sum(p.stat().st_size for p in listings)
    kinds = {}
    for row in report["summary"]:
        if row["device"] in ("pim", "npu") and row["ns"]:
            kinds[f"{row['op']}@{row['device']}"] = {
                "count": row["count"], "us": row["ns"] / 1e3,
                "efficiency": row.get("efficiency")}
    tot = report["totals"]
    return {
        "fits": True,
        "wall_s": wall,
        "wall_pipeline_s": sum(s for _, s in pm.timings),
        "wall_ok": wall < WALL_TARGET_S,
        "listings": len(listings),
        "listing_bytes": nbytes,
        "listing_ok": nbytes < LISTING_TARGET_BYTES,
        "timed_programs": report["timed_programs"],
        "step_us": report["serial_ns"] / 1e3,
        "pim_us": tot["pim"]["ns"] / 1e3,
        "npu_us": tot.get("npu", {}).get("ns", 0.0) / 1e3,
        "pim_energy_mj": tot["pim"]["energy_pj"] / 1e9,
        "pim_bytes_external_mb": (tot["pim"]["bytes_in"] + tot["pim"]["bytes_out"]) / 1e6,
        "tokens_per_s": 1e9 / report["serial_ns"],
        "by_op": kinds,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append", choices=PRESETS)
    ap.add_argument("--no-save", action="store_true", help="Do not write results/.")
    args = ap.parse_args(argv)
    results = {"model": "llama2-7b (shapes-only, decode)", "bind": BIND}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "llama2-7b-decode.onnx"
        zoo.save(zoo.build("llama2-7b", mode="decode"), model)
        for hw in args.preset or PRESETS:
            results[hw] = bench(model, hw, Path(tmp))
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if not args.no_save:
        write_results(RESULTS, results, indent=2, sort_keys=True)
    ok = all(r.get("wall_ok", True) and r.get("listing_ok", True)
             for k, r in results.items() if isinstance(r, dict) and "fits" in r)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
