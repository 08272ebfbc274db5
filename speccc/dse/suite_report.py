"""The suite's table: per pair the best speculative point against target-only decoding
on the same hardware and against the best speculative point of every fixed mapping, and
the geomean row (as SpecPIM's tables report its gains).

Ratios read "the best point is this many times better": speedup = baseline ms/token /
best ms/token; energy efficiency = baseline mJ/token / best mJ/token.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from speccc.dse.pareto import best
from speccc.dse.report import MAPPING_LABELS
from speccc.fileio import write_text_atomic

POINT_KEYS = ("id", "schedule", "gamma", "mapping", "draft_channels", "batch",
              "tokens_per_s", "itl_ms", "energy_per_token_mj", "accept_len")


def _spec(r) -> bool:
    return r["schedule"] != "none"


# (column key, short label, what the label means, which rows form the baseline):
# a table, not branches.
BASELINES = [
    ("target_only", "target-only", "no speculation (schedule none), its best mapping",
     lambda r: r["schedule"] == "none"),
    ("specpim", "SpecPIM", "serial over SpecPIM's mapping with disjoint channel sets",
     lambda r: (r["schedule"], r["mapping"]) == ("serial", "specpim")
     and r["draft_channels"] > 0),
    *[(f"mapping:{m}", short, f"the best speculative point with {MAPPING_LABELS[m]}",
       lambda r, m=m: _spec(r) and r["mapping"] == m)
      for m, short in (("all-npu", "all-NPU"), ("attacc", "AttAcc"),
                       ("all-pim", "all-PIM"), ("specpim", "SpecPIM map"))],
]


def _point(r) -> dict | None:
    return None if r is None else {k: r[k] for k in POINT_KEYS}


def pair_result(pair, study, stacks: int, rows: list, note: str, elapsed: float) -> dict:
    spec_best = best([r for r in rows if _spec(r)], "itl_ms")
    out = {"draft": pair.draft, "target": pair.target, "slug": pair.slug,
           "acceptance": list(pair.alphas), "acceptance_kind": pair.acceptance_kind,
           "source": pair.source, "basis": pair.basis, "stacks": stacks,
           "pim_channels": study.space.values("pim.channels")[0],
           "points": len(rows), "feasible_points": sum(r["feasible"] for r in rows),
           "seconds": round(elapsed, 1), "best": _point(spec_best), "baselines": {},
           "speedup": {}, "energy_efficiency": {}}
    if spec_best is None:
        notes = sorted({r["note"] for r in rows if r["note"]})
        out["status"] = "does not fit" if any("fit" in n for n in notes) else "infeasible"
        out["note"] = note or "; ".join(notes[:2])
        return out
    out["status"], out["note"] = "ok", ""
    for key, _, _, keep in BASELINES:
        b = best([r for r in rows if keep(r)], "itl_ms")
        out["baselines"][key] = _point(b)
        if b is not None:
            out["speedup"][key] = b["itl_ms"] / spec_best["itl_ms"]
            out["energy_efficiency"][key] = (b["energy_per_token_mj"]
                                             / spec_best["energy_per_token_mj"])
    return out


def geomean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


def write_suite(out: Path, suite, results: list, elapsed: float) -> dict:
    ok = [r for r in results if r["status"] == "ok"]
    gm = {kind: {key: geomean(r[kind].get(key) for r in ok) for key, _, _, _ in BASELINES}
          for kind in ("speedup", "energy_efficiency")}
    summary = {"suite": suite.source, "hardware": suite.preset,
               "space": suite.space, "prompt_len": suite.prompt_len,
               "max_new_tokens": suite.max_new_tokens, "seconds": round(elapsed, 1),
               "pairs": results, "geomean": gm, "geomean_over": [r["slug"] for r in ok]}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "suite.json", json.dumps(summary, indent=1) + "\n")
    write_text_atomic(out / "suite.md", markdown(summary))
    return summary


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}×"


def markdown(summary: dict) -> str:
    cols = [(k, label) for k, label, _, _ in BASELINES]
    lines = ["# speccc dse --suite", "",
             f"Hardware {summary['hardware']} scaled per pair (stacks), space "
             + ", ".join(f"{k} {v}" for k, v in summary["space"].items())
             + f", prompt {summary['prompt_len']}, {summary['max_new_tokens']} new "
             f"tokens, latency objective; {summary['seconds']:.0f} s.", "",
             "Best speculative point per pair and how many times faster (ms/token) it is "
             "than each baseline's best point on the same hardware. Baselines: "
             + "; ".join(f"**{label}**: {what}" for _, label, what, _ in BASELINES)
             + ".", "",
             "| draft → target | α (kind) | stacks | best point | ms/token | "
             + " | ".join(label for _, label in cols) + " |",
             "|---|---|---|---|---|" + "---|" * len(cols)]
    for r in summary["pairs"]:
        acc = ",".join(f"{a:g}" for a in r["acceptance"])
        head = f"| {r['draft']} → {r['target']} | {acc} ({r['acceptance_kind']}) | " \
               f"{r['stacks']} |"
        if r["status"] != "ok":
            lines.append(head + f" {r['status']}: {r['note']} | - |" + " - |" * len(cols))
            continue
        b = r["best"]
        lines.append(head + f" {b['schedule']} γ{b['gamma']} {b['mapping']} dc"
                     f"{b['draft_channels']} | {b['itl_ms']:.4g} | "
                     + " | ".join(_x(r["speedup"].get(k)) for k, _ in cols) + " |")
    gm = summary["geomean"]
    lines.append("| **geomean** | | | | | "
                 + " | ".join(f"**{_x(gm['speedup'][k])}**" for k, _ in cols) + " |")
    lines += ["", "Energy efficiency (baseline mJ/token / best mJ/token) at the same "
              "points:", "",
              "| draft → target | mJ/token | " + " | ".join(lb for _, lb in cols) + " |",
              "|---|---|" + "---|" * len(cols)]
    for r in summary["pairs"]:
        if r["status"] != "ok":
            lines.append(f"| {r['draft']} → {r['target']} | {r['status']} |"
                         + " - |" * len(cols))
            continue
        lines.append(f"| {r['draft']} → {r['target']} | "
                     f"{r['best']['energy_per_token_mj']:.4g} | "
                     + " | ".join(_x(r["energy_efficiency"].get(k)) for k, _ in cols)
                     + " |")
    lines.append("| **geomean** | | "
                 + " | ".join(f"**{_x(gm['energy_efficiency'][k])}**" for k, _ in cols)
                 + " |")
    lines += ["", f"Geomean over {len(summary['geomean_over'])} of "
              f"{len(summary['pairs'])} pairs (those with a feasible point). Acceptance "
              "sources:", ""]
    lines += [f"- {r['draft']} → {r['target']}: α "
              f"{','.join(f'{a:g}' for a in r['acceptance'])}"
              f" ({r['acceptance_kind']}). {r['source']}."
              + (f" Basis: {r['basis']}." if r["basis"] else "") for r in summary["pairs"]]
    return "\n".join(lines) + "\n"
