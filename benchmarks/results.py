"""Regenerate docs/results.md and its plots (docs/img/results-*.png) in one command:

    python benchmarks/results.py [--jobs 2] [--work results-work/] [--gpu-baseline F.json]

It runs the model-pair suite (`speccc dse --suite`, speccc/dse/suite.toml) and a γ sweep
at batch 1, 16 and 64 (LLaMA-68M -> LLaMA-2-7B, the suite's hardware), then writes the
suite table beside SpecPIM's reported figures and the published re-runs of its mapping
(SADDLE, AHASD, shared/ANCHORS.md), with the reason for every difference. --work keeps
each sweep's points.csv: rerunning resumes (points already there are not evaluated).

Column sources are a table (`COLUMN_SOURCES`): each maps a pair to (ms/token, mJ/token)
of a baseline system, or None. The GPU column is `speccc baseline`'s GPU speculative row
on a100-80g (speccc/dse/baseline.py), or a JSON file given by --gpu-baseline.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from speccc.dse import driver  # noqa: E402
from speccc.dse.pareto import best  # noqa: E402
from speccc.dse.suite import load_suite, pair_study, run_suite  # noqa: E402
from speccc.dse.sweep import PointStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC, IMG = ROOT / "docs" / "results.md", ROOT / "docs" / "img"
SWEEP_PAIR = "llama-68m--llama2-7b"
SWEEP_BATCHES = (1, 16, 64)
SWEEP_GAMMAS = list(range(1, 9))

# SpecPIM and the re-runs of its mapping, as reported (shared/ANCHORS.md).
PUBLISHED = [
    ("SpecPIM (ASPLOS'24) vs speculative inference on GPUs", "1.52×", "6.67×"),
    ("SpecPIM (ASPLOS'24) vs PIM-based LLM accelerators", "2.02×", "2.68×"),
    ("SADDLE (HPCA'26) vs the SpecPIM mapping (HBM3-PIM + A100, throughput)", "1.71×", "-"),
    ("AHASD (arXiv 2604.25326) vs GPU-only (claims)", "up to 4.2×", "up to 5.6×"),
    ("AHASD vs a SpecPIM-style GPU+PIM system (claims)", "1.5×", "1.24×"),
]


GPU_SYSTEM, GPU_TP = "a100-80g", (1, 2, 4, 8)


def gpu_column(args, suite):
    """(ms/token, mJ/token) per pair of speculative decoding on A100s (`speccc baseline`'s
    GPU speculative row: serial, the pair's α, the best γ of the suite's space, the fewest
    GPUs in tensor parallel that hold the models), or from a JSON file
    {"<draft>--<target>": {"itl_ms": .., "energy_per_token_mj": ..}} given by --gpu-baseline."""
    if args.gpu_baseline:
        data = json.loads(Path(args.gpu_baseline).read_text())
        return {k: (v["itl_ms"], v["energy_per_token_mj"]) for k, v in data.items()}
    from speccc.dse.baseline import baseline_rows
    from speccc.errors import CapacityError
    out = {}
    for pair in suite.pairs:
        for tp in GPU_TP:
            try:
                rows = [r for r in baseline_rows(
                    pair.target, pair.draft, [GPU_SYSTEM], gammas=suite.space["gamma"],
                    alphas=pair.alphas, batch=1, prompt_len=suite.prompt_len,
                    max_new_tokens=suite.max_new_tokens, tp=tp, best=False)
                    if r["baseline"] == "gpu-spec" and r["feasible"]]
            except CapacityError:
                continue
            if rows:
                fastest = min(rows, key=lambda r: r["itl_ms"])
                out[pair.slug] = (fastest["itl_ms"], fastest["energy_per_token_mj"])
                break
    return out


# (column label, what it compares with, loader): one more baseline is one more row.
COLUMN_SOURCES = [(f"GPU ({GPU_SYSTEM} spec.)", "speculative decoding on A100s",
                   gpu_column)]


def gamma_sweep(suite, work: Path, jobs: int) -> dict:
    """{batch: {γ: speedup of serial γ over no speculation}} on the sweep pair."""
    pair = next(p for p in suite.pairs if p.slug == SWEEP_PAIR)
    space = {**suite.space, "gamma": SWEEP_GAMMAS, "schedule": ["none", "serial"],
             "mapping": ["specpim"], "batch": list(SWEEP_BATCHES)}
    study, stacks = pair_study(pair, dataclasses.replace(suite, space=space))
    before = len(PointStore(work, study).rows)
    driver.run(study, work, "grid", "latency", "local", jobs, None, 256, {}, 0, 0)
    every = list(PointStore(work, study).rows.values())
    rows = [r for r in every if r["feasible"]]
    out, plain = {}, {}
    for b in SWEEP_BATCHES:
        none = best([r for r in rows if r["batch"] == b and r["schedule"] == "none"],
                    "itl_ms")
        plain[b] = none["tokens_per_s"]
        out[b] = {g: none["itl_ms"] / best([r for r in rows if r["batch"] == b and r[
            "schedule"] == "serial" and r["gamma"] == g], "itl_ms")["itl_ms"]
            for g in SWEEP_GAMMAS}
    return {"pair": pair, "stacks": stacks, "speedup": out, "target_only_tokens_per_s":
            plain, "points": len(every), "evaluated": len(every) - before}


def plot_suite(summary: dict, path: Path) -> None:
    ok = [r for r in summary["pairs"] if r["status"] == "ok"]
    keys = [("target_only", "vs target-only"), ("specpim", "vs SpecPIM"),
            ("mapping:attacc", "vs AttAcc mapping")]
    fig, ax = plt.subplots(figsize=(9, 4))
    w = 0.8 / len(keys)
    for i, (k, label) in enumerate(keys):
        ax.bar([j + i * w for j in range(len(ok))],
               [r["speedup"].get(k) or 0 for r in ok], w, label=label)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks([j + w for j in range(len(ok))])
    ax.set_xticklabels([f"{r['draft']}\n→{r['target']}" for r in ok], fontsize=7)
    ax.set_ylabel("speedup of the best speculative point")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"speccc dse --suite on {summary['hardware']} (batch 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(sweep: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = ("o-", "s--", "^:")   # equal ratios at two batches must both stay visible
    for (b, by_g), style in zip(sweep["speedup"].items(), styles):
        ax.plot(list(by_g), list(by_g.values()), style, label=f"batch {b}", alpha=0.8)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("γ (tokens drafted per verify)")
    ax.set_ylabel("speedup of serial over no speculation")
    p = sweep["pair"]
    ax.set_title(f"{p.draft} → {p.target}, α {p.alphas[0]:g}, SpecPIM mapping")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--work", default="results-work")
    ap.add_argument("--gpu-baseline", help="`speccc baseline` JSON for the GPU column")
    args = ap.parse_args()
    t0 = time.perf_counter()
    from speccc import cachedir      # dse price tables live under the one cache root
    tables_before = set(cachedir.cache_dir("dse").glob("*.pkl"))
    suite = load_suite()
    work = Path(args.work)
    summary = run_suite(suite, work / "suite", jobs=args.jobs)
    from results_doc import overlap_vs_specpim, render   # benchmarks/results_doc.py
    summary["overlap_vs_specpim"] = overlap_vs_specpim({
        p.slug: list(PointStore(work / "suite" / p.slug, pair_study(p, suite)[0]).rows.values())
        for p in suite.pairs})
    sweep = gamma_sweep(suite, work / "gamma", args.jobs)
    IMG.mkdir(parents=True, exist_ok=True)
    plot_suite(summary, IMG / "results-suite.png")
    plot_sweep(sweep, IMG / "results-gamma.png")
    columns = [(label, what, load(args, suite)) for label, what, load in COLUMN_SOURCES]
    # tables this run had to compute (a key names code, models and hardware: an entry left
    # by older code is not a hit), for the header's account of the run time
    summary["cost_tables_computed"] = len(set(cachedir.cache_dir("dse").glob("*.pkl"))
                                          - tables_before)
    DOC.write_text(render(summary, sweep, columns, PUBLISHED, time.perf_counter() - t0,
                          args), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} and docs/img/results-*.png in "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
