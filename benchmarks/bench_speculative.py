"""Speculative schedules on the modeled NPU + PIM system: when does speculation pay?

    python benchmarks/bench_speculative.py                      # every preset 7B fits
    python benchmarks/bench_speculative.py --hw aim-gddr6 --quick
    python benchmarks/bench_speculative.py --schedules pipeinfer --batches 4,16 --alphas 0.8
                                                    # some cells only (+ none at each batch)

LLaMA-2-7B target + LLaMA-68M draft (zoo presets, fp16, shapes-only), the synthetic
acceptance process (--acceptance a), prompt 128, 128 new tokens, the targets' cost
models (PIM emulator-calibrated, NPU tiling model). For each preset the 7B fits:
- v: the target's verify of gamma+1 = 5 positions / one decode step (T=1), and c: the
  draft's step / the target's step (Leviathan's E/(gamma c + v) bound is printed too);
- tokens/s and energy/token of none / serial / overlap / pipeinfer for batch 1, 4, 16,
  64 (pipeinfer with a batch: each request its own bursts, `rounds=request`, the default;
  docs/schedules.md), gamma 1, 2, 4, 8, alpha 0.6, 0.8. --schedules/--batches/--gammas/
  --alphas run a subset (a cell of the table is the best gamma run), written to
  bench_speculative_subset.json so a full sweep's file is never overwritten by a part.
The goal of issue 13 (on a preset whose target PUs have >= gamma+1 lanes: v <= 1.3 at
gamma 4; serial >= 1.8x none at alpha 0.8, batch 1, energy/token no worse) is printed
next to what the model says; nothing is tuned toward it. Results: stdout and
benchmarks/results/bench_speculative.json (and a markdown table for docs/schedules.md).
"""
from __future__ import annotations

import argparse
import time

from speccc import zoo
from speccc.errors import CapacityError
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.hw import load_hw
from speccc.hw.config import preset_names
from speccc.passmanager import PassManager
from speccc.pipeline import run_canonical
from speccc.runtime.costs import ModelCosts
from speccc.runtime.runner import RunConfig, simulate
from bench_io import write_results  # benchmarks/bench_io.py

RESULTS, SUBSET_RESULTS = "bench_speculative.json", "bench_speculative_subset.json"
SCHEDULES = ("serial", "overlap", "pipeinfer")
PROMPT, TOKENS = 128, 128


def module_7b():
    m = import_model(zoo.build("llama-68m", mode="decode", dtype="float16", weights=False),
                     ImportOptions(graph_name="draft", shapes_only=True))
    import_model(zoo.build("llama2-7b", mode="decode", dtype="float16", weights=False),
                 ImportOptions(graph_name="target", shapes_only=True), module=m)
    return run_canonical(m)


def simulate_point(m, hw, schedule, gamma, alpha, batch):
    spec = f"schedule={schedule},gamma={gamma},hw={hw},batch={batch}"
    PassManager.parse(f"speculate{{{spec}}}").run(m)
    rep = simulate(m, RunConfig(max_new_tokens=TOKENS, prompt_len=PROMPT, acceptance=alpha,
                                seed=0))[0]
    return {"tokens_per_s": rep["tokens_per_s"],
            "energy_per_token_mj": rep["energy_per_token_mj"],
            "mean_acceptance_length": rep["mean_acceptance_length"]}


def model_facts(m, hw_name, gamma=4):
    hw = load_hw(hw_name)
    groups = {"pim": list(range(hw.pim.channels))}
    t = ModelCosts(m.graphs["target"], hw, groups, ["pim"])
    d = ModelCosts(m.graphs["draft"], hw, groups, ["pim"])
    ns = lambda c, T: sum(s.dur for s in c.forward(T, PROMPT))  # noqa: E731
    t1, tv, d1 = ns(t, 1), ns(t, gamma + 1), ns(d, 1)
    out = {"target_step_ms": t1 / 1e6, "verify_over_step_v": tv / t1,
           "draft_over_target_c": d1 / t1}
    for a in (0.6, 0.8):
        e = (1 - a ** (gamma + 1)) / (1 - a)
        out[f"leviathan_bound_a{a}"] = e / (gamma * d1 / t1 + tv / t1)
    return out


def fits(m, hw) -> bool:
    try:
        simulate_point(m, hw, "none", 1, 0.8, 1)
        return True
    except CapacityError:
        return False


def sweep(m, hw, args) -> dict:
    out = {"facts": model_facts(m, hw), "points": [], "does_not_fit": []}
    for batch in args.batches:
        try:
            none = simulate_point(m, hw, "none", 1, 0.8, batch)
        except CapacityError as e:   # the KV of `batch` requests does not fit: say so
            out["does_not_fit"].append({"batch": batch, "why": str(e)})
            continue
        out["points"].append({"schedule": "none", "gamma": 0, "alpha": None,
                              "batch": batch, **none})
        for alpha in args.alphas:
            for schedule in args.schedules:
                for gamma in args.gammas:
                    try:
                        r = simulate_point(m, hw, schedule, gamma, alpha, batch)
                    except CapacityError as e:   # e.g. the target's own channel group
                        out["does_not_fit"].append({"batch": batch, "schedule": schedule,
                                                    "why": str(e)})
                        continue
                    out["points"].append({
                        "schedule": schedule, "gamma": gamma, "alpha": alpha, "batch": batch,
                        **r, "speedup": r["tokens_per_s"] / none["tokens_per_s"],
                        "energy_ratio": r["energy_per_token_mj"] / none["energy_per_token_mj"]})
    return out


def best(points, **where):
    pts = [p for p in points if all(p.get(k) == v for k, v in where.items())]
    return max(pts, key=lambda p: p["tokens_per_s"]) if pts else None


def report(res) -> list[str]:
    lines = ["| preset | v (γ=4) | c | batch | none tok/s | best serial (γ, ×none, E×) @0.8 "
             "| best overlap @0.8 | pipeinfer @0.8 | best serial @0.6 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for hw, r in res.items():
        f = r["facts"]
        for batch in sorted({p["batch"] for p in r["points"]}):
            none = best(r["points"], schedule="none", batch=batch)
            cell = []
            for sched, a in (("serial", 0.8), ("overlap", 0.8), ("pipeinfer", 0.8),
                             ("serial", 0.6)):
                p = best(r["points"], schedule=sched, alpha=a, batch=batch)
                cell.append(f"γ={p['gamma']}: {p['speedup']:.2f}×, E {p['energy_ratio']:.2f}×"
                            if p else "–")
            lines.append(f"| {hw} | {f['verify_over_step_v']:.2f} | "
                         f"{f['draft_over_target_c']:.3f} | {batch} | "
                         f"{none['tokens_per_s']:.1f} | " + " | ".join(cell) + " |")
    return lines


def goal(res) -> list[str]:
    out = []
    for hw, r in res.items():
        p = next((p for p in r["points"] if p["schedule"] == "serial" and p["gamma"] == 4
                  and p["alpha"] == 0.8 and p["batch"] == 1), None)
        v = r["facts"]["verify_over_step_v"]
        if p:
            out.append(f"{hw}: v={v:.2f} (goal <= 1.3), serial γ=4 @0.8 batch 1 = "
                       f"{p['speedup']:.2f}x none (goal >= 1.8), energy/token "
                       f"{p['energy_ratio']:.2f}x none (goal <= 1)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hw", action="append", help="preset(s) (default: every preset 7B fits)")
    ap.add_argument("--quick", action="store_true", help="batch 1 and 16, gamma 1 and 4")
    for name, kind, what in (("schedules", str, f"of {','.join(SCHEDULES)}"),
                             ("batches", int, "of 1,4,16,64"), ("gammas", int, "of 1,2,4,8"),
                             ("alphas", float, "of 0.6,0.8")):
        ap.add_argument(f"--{name}", type=lambda text, kind=kind: tuple(
            kind(x) for x in text.split(",")), help=f"only these (comma list, {what})")
    args = ap.parse_args()
    subset = any(getattr(args, k) for k in ("schedules", "batches", "gammas", "alphas"))
    args.schedules = args.schedules or SCHEDULES
    unknown = set(args.schedules) - set(SCHEDULES)
    if unknown:
        ap.error(f"--schedules: unknown {', '.join(sorted(unknown))} (of {', '.join(SCHEDULES)})")
    args.batches = args.batches or ((1, 16) if args.quick else (1, 4, 16, 64))
    args.gammas = args.gammas or ((1, 4) if args.quick else (1, 2, 4, 8))
    args.alphas = args.alphas or (0.6, 0.8)
    t0 = time.perf_counter()
    m = module_7b()
    presets = args.hw or [p for p in preset_names() if fits(m, p)]
    res = {hw: sweep(m, hw, args) for hw in presets}
    lines = report(res)
    print("\n".join(lines))
    print("\n".join(goal(res)))
    for hw, r in res.items():
        for miss in r["does_not_fit"]:
            print(f"{hw} batch {miss['batch']} {miss.get('schedule', '')}: {miss['why']}")
    path = write_results(SUBSET_RESULTS if subset else RESULTS, {
        "presets": res, "table": lines, "goal": goal(res), "seconds": time.perf_counter() - t0,
        "swept": {k: list(getattr(args, k)) for k in ("schedules", "batches", "gammas",
                                                       "alphas")}})
    print(f"wrote {path} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
