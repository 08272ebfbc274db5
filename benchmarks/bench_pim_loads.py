"""How much of a multi-token GEMV's input loading hides behind its MACs.

    python benchmarks/bench_pim_loads.py                 # the multi-slot presets
    python benchmarks/bench_pim_loads.py --preset hbm3-pim-x8

For T-token GEMVs (gemv.gemv_tokens) on each preset whose PUs buffer several tokens,
times (refresh off, so the runs compare) the listing, its MACs alone (every WRGB removed)
and its loads alone (only the WRGBs), and prints the hidden fraction
(mac + load - all) / min(mac, load): 1 = the smaller part fully overlapped, 0 = serial.
Shapes: 128x4096 and 128x1024 ("passes" order, p·V-like) and 4096x4096 ("tiles" order,
where every pass re-reads a tile: single-buffered its refill waits for the last pass;
double-buffered, gemv.double_buffered, it spreads over all passes). For double-buffered
GEMVs the single-buffered listing's cycles are printed too (the same PUs with exactly T
buffer vectors). Results go to benchmarks/results/bench_pim_loads.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from speccc.hw import load_hw, preset_names
from speccc.targets.pim.emulator import time_program
from speccc.targets.pim.gemv import double_buffered, gemv_tokens
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import Program, cmd, keep_commands
from bench_io import write_results  # benchmarks/bench_io.py

RESULTS = "bench_pim_loads.json"
SHAPES = ((128, 4096), (128, 1024), (4096, 4096))




def measure(hw, M: int, K: int, T: int) -> dict:
    pl = plan_matrix(hw, M, K)
    stream = (pl.Kp + pl.tile_elems) // pl.lanes
    prog = Program(tuple(gemv_tokens(hw, pl, T, stream=stream)) + (cmd("SYNC"),), hw.name)

    def cycles(body) -> int:
        return time_program(dataclasses.replace(prog, body=body), hw, refresh=False).cycles
    t_all = cycles(prog.body)
    t_mac = cycles(keep_commands(prog.body, lambda c: c.op != "WRGB"))
    t_load = cycles(keep_commands(prog.body, lambda c: c.op == "WRGB"))
    out = {"M": M, "K": K, "T": T, "order": pl.order, "passes": pl.passes, "tiles": pl.tiles,
           "cycles": t_all, "mac_only": t_mac, "load_only": t_load,
           "hidden": (t_mac + t_load - t_all) / min(t_mac, t_load),
           "double_buffered": double_buffered(hw, pl, T)}
    if out["double_buffered"]:
        pu = dataclasses.replace(hw.pim.pu, vector_slots=T)
        single = dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, pu=pu))
        out["single_buffered_cycles"] = measure(single, M, K, T)["cycles"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", action="append", help="preset(s) (default: multi-slot ones)")
    args = ap.parse_args(argv)
    names = args.preset or [n for n in preset_names() if load_hw(n).pim.token_slots > 1]
    out = {}
    for name in names:
        hw = load_hw(name)
        rows = [measure(hw, M, K, T) for M, K in SHAPES
                for T in sorted({2, 3, 4, hw.pim.token_slots})]
        out[name] = rows
        for r in rows:
            print(f"{name:14s} {r['M']:>5}x{r['K']:<5} {r['order']:6s} T={r['T']}: "
                  f"{r['cycles']:>6} cycles, MACs alone {r['mac_only']:>6}, loads alone "
                  f"{r['load_only']:>6}, hidden {r['hidden']:.2f}"
                  + (f"; single-buffered {r['single_buffered_cycles']} "
                     f"(double/single {r['cycles'] / r['single_buffered_cycles']:.3f})"
                     if r["double_buffered"] else ""))
    write_results(RESULTS, out, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
