"""The sweep's outputs besides points.csv: pareto.json, pareto.png, best.toml, report.md.

Baselines are rows of the same sweep, the best point of each constrained subset: a fixed
op mapping (all-NPU, all-PIM, attention-only PIM, SpecPIM's, ...), no speculation, and
every fixed γ. The sweep evaluates those subsets around the best point too (see
`baseline_ids`), so the table compares like with like whatever the strategy.
"""
from __future__ import annotations

import json
from pathlib import Path

from speccc.dse.closedform import FORMS
from speccc.dse.hwfile import variant_text
from speccc.dse.mapping import partition_context, point_passes, spans_text
from speccc.dse.pareto import best, front
from speccc.fileio import write_bytes_atomic, write_text_atomic

MAPPING_LABELS = {"all-npu": "all-NPU", "all-pim": "all-PIM",
                  "attacc": "attention-only PIM (AttAcc)", "specpim": "SpecPIM's mapping",
                  "mincut": "min-cut mapping", "auto": "per-op fastest (auto)",
                  "all-gpu": "all-GPU"}
UNITS = {"itl_ms": "ms/token", "energy_per_token_mj": "mJ/token", "edp": "ms·mJ"}


def baseline_ids(space, rows, metric) -> list[int]:
    """Points around the best: each mapping and each γ with the best's other values."""
    b = best(rows, metric)
    if b is None:
        return []
    out = []
    for m in space.values("mapping"):
        for s in space.values("schedule"):
            for g in space.values("gamma"):
                out.append(space.index({**b, "mapping": m, "schedule": s, "gamma": g}))
    return sorted(set(out))


def baselines(space, rows, metric) -> list[tuple[str, dict | None]]:
    """(label, best row satisfying it): one row per constraint, a table of predicates."""
    table = [(f"mapping: {MAPPING_LABELS[m]}", lambda r, m=m: r["mapping"] == m)
             for m in space.values("mapping")]
    if "specpim" in space.values("mapping") and "serial" in space.values("schedule"):
        table.append(("SpecPIM (serial, its mapping, disjoint channel sets)",
                      lambda r: (r["schedule"], r["mapping"]) == ("serial", "specpim")
                      and r["draft_channels"] > 0))
    if "none" in space.values("schedule"):
        table.append(("no speculation (schedule none)", lambda r: r["schedule"] == "none"))
    table += [(f"fixed γ = {g}", lambda r, g=g: r["schedule"] != "none" and r["gamma"] == g)
              for g in space.values("gamma")]
    return [(label, best([r for r in rows if keep(r)], metric)) for label, keep in table]


def is_system(text: str) -> bool:
    """A system description (a [system] table: speccc.hw.system), not a device preset."""
    import tomllib
    return "system" in tomllib.loads(text)


def knobs_of(space, row) -> dict:
    return {k: row[k] for k in space.knobs}


def run_command(study, row, hw_file: str) -> str:
    acc = ",".join(f"{a:g}" for a in study.alphas)
    parts = [f"speccc run --target {study.target} --draft {study.draft} --hw {hw_file}",
             f"--schedule {row['schedule']} --gamma {row['gamma']}",
             f"--batch {row['batch']} --acceptance {acc}",
             f"--max-new-tokens {study.max_new_tokens} --prompt-len {study.prompt_len}",
             "--cost-model " + study.cost_model]
    if row["schedule"] != "none" and row["draft_channels"]:
        parts.append(f"--draft-channels {row['draft_channels']}")
    passes = point_passes(row, hw_file, partition_context(study.prompt_len,
                                                          study.max_new_tokens),
                          spans=point_spans(study, row), cost_model=study.cost_model)
    if passes:
        parts.append(f"--passes '{passes}'")
    return " ".join(parts)


def point_spans(study, row) -> dict | None:
    """role -> the (lo, hi) PIM channels the point gives it (Evaluator.spans)."""
    from speccc.dse.evaluate import evaluator
    ev = evaluator(study)
    split = ev.split(row, study)
    return None if isinstance(split, str) else ev.spans(split)


def dse_table(study, row) -> str:
    """best.toml's [dse]: the chosen point, which `speccc run --hw best.toml` takes as
    defaults (load_hw reads and keeps it apart from the hardware), with the channels and
    cost model its mapping was priced on (so run re-solves the same mapping)."""
    mid = partition_context(study.prompt_len, study.max_new_tokens)
    spans = point_spans(study, row)
    return ("\n[dse]\n" + "".join(f"{k} = {json.dumps(row[k])}\n" for k in (
        "schedule", "gamma", "mapping", "draft_channels", "batch"))
        + f"partition_p = {mid}\n"
        + (f"channels = {json.dumps(spans_text(spans))}\n" if spans else "")
        + f"cost_model = {json.dumps(study.cost_model)}\n")


def write_outputs(out_dir, study, rows, metric, objective, confirmed, elapsed) -> dict:
    out = Path(out_dir)
    space = study.space
    pf = front(rows)
    b = best(rows, metric)
    cols = ["id", *space.names, "tokens_per_s", "itl_ms", "energy_per_token_mj", "edp",
            "accept_len"]
    write_text_atomic(out / "pareto.json", json.dumps({
        "objective": objective, "axes": ["itl_ms", "energy_per_token_mj"],
        "best": {c: b[c] for c in cols} if b else None,
        "front": [{c: r[c] for c in cols} for r in pf],
        "confirmed": confirmed}, indent=1) + "\n")
    write_bytes_atomic(out / "pareto.png", _plot(rows, pf, b))
    if b is not None:
        hw_file = str(out / "best.toml")
        system = is_system(dict(study.hw_texts)[study.hw_key(b)])
        how = (["a system description: `speccc run` takes device presets; `speccc "
                "baseline --system best.toml` evaluates its baselines"] if system else
               ["run it:", "  " + run_command(study, b, hw_file)])
        header = "".join(f"# {line}\n" for line in [
            f"speccc dse best point by {objective} (id {b['id']}): schedule "
            f"{b['schedule']}, gamma {b['gamma']}, mapping {b['mapping']}, draft_channels "
            f"{b['draft_channels']}, batch {b['batch']}",
            f"modeled: {b['tokens_per_s']:.1f} tokens/s, {b['itl_ms']:.4g} ms/token, "
            f"{b['energy_per_token_mj']:.4g} mJ/token", *how])
        # a system file takes no [dse] table (load_hw reads it for device presets only)
        write_text_atomic(out / "best.toml", variant_text(b["hw"], knobs_of(space, b),
                                                          header)
                          + ("" if system else dse_table(study, b)))
    write_text_atomic(out / "report.md", _markdown(study, rows, pf, b, metric, objective,
                                                   confirmed, elapsed))
    return {"best": b, "front": pf}


def _plot(rows, pf, b) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r["feasible"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in sorted({r["schedule"] for r in ok}):
        pts = [r for r in ok if r["schedule"] == s]
        ax.scatter([r["itl_ms"] for r in pts], [r["energy_per_token_mj"] for r in pts],
                   s=8, alpha=0.4, label=s)
    ax.plot([r["itl_ms"] for r in pf], [r["energy_per_token_mj"] for r in pf], "k.-",
            label="Pareto front")
    if b is not None:
        ax.plot([b["itl_ms"]], [b["energy_per_token_mj"]], "r*", ms=14, label="best")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency per token (ms)")
    ax.set_ylabel("energy per token (mJ)")
    ax.legend(fontsize=8)
    ax.set_title("speccc dse: latency vs energy per token")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _markdown(study, rows, pf, b, metric, objective, confirmed, elapsed) -> str:
    space = study.space
    ok = sum(r["feasible"] for r in rows)
    lines = [f"# speccc dse: {study.target} with draft {study.draft}", "",
             f"{len(rows)} points ({ok} feasible) of a {space.size}-point space "
             f"({', '.join(f'{n} {len(v)}' for n, v in space.dims)}); acceptance "
             f"{'trace' if study.trace else ','.join(f'{a:g}' for a in study.alphas)}, "
             f"prompt {study.prompt_len}, {study.max_new_tokens} new tokens, cost model "
             f"{study.cost_model}; {elapsed:.1f} s.", ""]
    if b is None:
        return "\n".join(lines + ["No feasible point.", ""])
    lines += [f"## Best point by {objective} ({UNITS[metric]})", "",
              "| " + " | ".join(space.names) + " | tokens/s | ms/token | mJ/token |",
              "|" + "---|" * (len(space.names) + 3),
              "| " + " | ".join(str(b[n]) for n in space.names) +
              f" | {b['tokens_per_s']:.1f} | {b['itl_ms']:.4g} | "
              f"{b['energy_per_token_mj']:.4g} |", "",
              "## Against fixed mappings, no speculation and every fixed γ", "",
              f"Each baseline is the best point of the sweep under that constraint; "
              f"'better by' is baseline {metric} / best {metric}.", "",
              f"| baseline | its best point | {UNITS[metric]} | best is better by |",
              "|---|---|---|---|"]
    for label, r in baselines(space, rows, metric):
        if r is None:
            lines.append(f"| {label} | (infeasible) | - | - |")
            continue
        desc = f"{r['schedule']} γ{r['gamma']} {r['mapping']} (id {r['id']})"
        lines.append(f"| {label} | {desc} | {r[metric]:.4g} | {r[metric] / b[metric]:.3f}× |")
    lines += ["", f"## Pareto front ({len(pf)} points; pareto.png)", "",
              "| id | schedule | γ | mapping | draft ch | batch | ms/token | mJ/token |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['schedule']} | {r['gamma']} | {r['mapping']} | "
              f"{r['draft_channels']} | {r['batch']} | {r['itl_ms']:.4g} | "
              f"{r['energy_per_token_mj']:.4g} |" for r in pf]
    lines += ["", *_confirm_md(confirmed)]
    return "\n".join(lines) + "\n"


def _confirm_md(confirmed) -> list[str]:
    if not confirmed:
        return ["## Closed form vs runtime", "", "Not confirmed (--confirm 0)."]
    out = ["## Closed form vs runtime (`simulate`, the discrete-event runtime)", "",
           "Relative errors of the closed form; in brackets, at the acceptance length the "
           "runtime's seeded draws realized (the closed form's own error, without "
           "sampling noise).", "",
           "| id | schedule | on front | accept len (model/runtime) | tokens/s err | "
           "ms/token err | mJ/token err |", "|---|---|---|---|---|---|---|"]
    worst: dict = {}
    for c in confirmed:
        e = c["rel_error"]
        if e is None:
            out.append(f"| {c['id']} | {c['schedule']} | {c['on_front']} | runtime "
                       f"refused: {c['note']} | | |")
            continue
        ce = c["rel_error_at_realized_acceptance"]
        acc = f"{c['analytical']['accept_len']:.2f}/{c['simulated']['accept_len']:.2f}"
        out.append(f"| {c['id']} | {c['schedule']} | {c['on_front']} | {acc} | "
                   + " | ".join(f"{e[m]:.1%} ({ce[m]:.1%})" for m in (
                       "tokens_per_s", "itl_ms", "energy_per_token_mj")) + " |")
        w = worst.setdefault(c["schedule"], [0.0, 0.0])
        w[:] = [max(w[0], *e.values()), max(w[1], *ce.values())]
    if worst:
        out += ["", "Worst relative error per schedule: " + ", ".join(
            f"{s} {w[0]:.1%} ({w[1]:.1%} at realized acceptance; {FORMS[s][1]} closed "
            "form)" for s, w in sorted(worst.items()))
            + "."]
    return out
