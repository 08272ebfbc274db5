"""PIM attention listings vs the cost model, decode (T=1) and verify (T=5) on every preset.

    python benchmarks/bench_pim_attention.py                 # all presets
    python benchmarks/bench_pim_attention.py --preset hbm3-pim-x8

One LLaMA-2-70B-like GQA attention (H=32 query heads, G=8 kv heads, D=128, S=1024 keys
cached, causal): the score and context listings `speccc compile` emits
(attention_kernel.AttentionKernel, timed by compile's `Timer`, phase charges included) against the
cost model's price of the same op (cost.gemv_run: an S×D score GEMV and a D×S context
GEMV per kv head, rows grouped by token_slots as the listings group them). Prints
verify ÷ decode for both (the goal on a multi-slot preset: well under T = 5, since one KV
row visit serves up to token_slots query rows) and cost ÷ listings. Results go to
benchmarks/results/bench_pim_attention.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speccc.hw import load_hw, preset_names
from speccc.targets.pim.codegen import Timer, kernel_for, op_dims, op_layouts
from speccc.targets.pim.cost import gemv_run
from bench_io import write_results  # benchmarks/bench_io.py

HERE = Path(__file__).resolve().parent
RESULTS = "bench_pim_attention.json"
H, G, D, S = 32, 8, 128, 1024


def listings_ns(hw, T: int) -> float:
    shapes = [(1, H, T, D), (1, G, S, D), (1, G, S, D)]
    attrs = {"scale": D ** -0.5, "causal": True}
    regions = op_layouts("attention", hw, op_dims("attention", attrs, shapes),
                         max_context=S + 8)
    attrs.update(pim_base_row=0, pim_max_context=S + 8,
                 pim_channels=list(range(max(r.channels for r in regions))))
    kernel = kernel_for("attention", attrs, hw, shapes)
    timer = Timer(hw)
    return sum(timer.time(prog).ns for _, prog in kernel.phases())


def cost_ns(hw, T: int) -> float:
    rows = T * (H // G)
    return gemv_run(hw, S, D, G, rows).ns + gemv_run(hw, D, S, G, rows).ns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append", help="preset(s) to run (default: all)")
    args = ap.parse_args(argv)
    out = {}
    for name in args.preset or preset_names():
        hw = load_hw(name)
        rec = {"token_slots": hw.pim.token_slots, "mac_lanes": hw.pim.pu.mac_lanes}
        for T in (1, 5):
            rec[f"listings_ns_T{T}"] = listings_ns(hw, T)
            rec[f"cost_ns_T{T}"] = cost_ns(hw, T)
        rec["listings_verify_over_decode"] = rec["listings_ns_T5"] / rec["listings_ns_T1"]
        rec["cost_verify_over_decode"] = rec["cost_ns_T5"] / rec["cost_ns_T1"]
        rec["cost_over_listings_T5"] = rec["cost_ns_T5"] / rec["listings_ns_T5"]
        out[name] = rec
        print(f"{name:14s} slots {rec['token_slots']}: listings T=1 {rec['listings_ns_T1']:>9,.0f} ns,"
              f" T=5 {rec['listings_ns_T5']:>9,.0f} ns (x{rec['listings_verify_over_decode']:.2f});"
              f" cost model x{rec['cost_verify_over_decode']:.2f},"
              f" cost/listings {rec['cost_over_listings_T5']:.2f}")
    write_results(RESULTS, out, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
