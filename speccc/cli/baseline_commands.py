"""`speccc baseline`: GPU, AttAcc-like, PIM-only, NPU-only and SpecPIM-mapping baselines of
a draft/target pair on one or more systems, priced like `speccc dse` (docs/baselines.md)."""
from __future__ import annotations

import json

import click

from speccc.cli.main import console, main


@main.command("baseline", short_help="Compare against GPU, AttAcc, PIM-only, NPU-only, SpecPIM.")
@click.option("--target", required=True, help="Target model: .onnx or a zoo name (llama2-7b).")
@click.option("--draft", default="llama-68m", show_default=True,
              help="Draft model: .onnx or a zoo name.")
@click.option("--system", "systems", multiple=True, required=True,
              help="System or device preset, or .toml (repeat): a100-80g, h100-80g, "
              "attacc, hbm3-pim-spec, ... (`speccc hw list`).")
@click.option("--spec/--no-spec", default=True, show_default=True,
              help="Speculative (serial) rows, or every row autoregressive.")
@click.option("--batch", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="Concurrent requests B (each with its own KV cache).")
@click.option("--gamma", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Draft tokens per block for the speculative rows.")
@click.option("--acceptance", default="0.8", show_default=True,
              help="Acceptance rate α, or α1,α2,... per block position.")
@click.option("--tp", type=click.IntRange(1, 64), help="Tensor-parallel GPUs (GPU systems; "
              "default: the system's [system] xpus).")
@click.option("--prompt-len", type=click.IntRange(1), default=8, show_default=True,
              help="Prompt tokens per request (prefilled before decoding).")
@click.option("--max-new-tokens", type=click.IntRange(1), default=128, show_default=True,
              help="Tokens generated per request (the KV cache grows to prompt + this).")
@click.option("--cost-model", type=click.Choice(["roofline", "targets", "targets-fast"]),
              default="roofline", show_default=True,
              help="Forward prices (as `speccc dse --cost-model`): roofline (fast), the targets' "
                   "emulator costs, or targets-fast (PIM GEMVs in closed form).")
@click.option("--no-best", is_flag=True, help="Skip the speccc-best row (a small dse sweep).")
@click.option("--runtime", is_flag=True, help="Run each row on the discrete-event runtime "
              "(`speccc run`'s, seeded acceptance draws) instead of the closed form.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the runtime's acceptance draws (--runtime).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def baseline(target, draft, systems, spec, batch, gamma, acceptance, tp, prompt_len,
             max_new_tokens, cost_model, no_best, runtime, seed, as_json):
    """Tokens/s, ms/token and energy/token of TARGET (with DRAFT) under each baseline:
    GPU autoregressive and speculative, AttAcc-like, PIM-only, NPU-only, SpecPIM's
    mapping with disjoint channel sets, and the best speccc schedule; speedups against
    GPU AR. A system gets the rows its devices allow.

    \b
    speccc baseline --target llama2-7b --system a100-80g --system hbm3-pim-spec
    speccc baseline --target llama2-70b --system a100-80g --tp 2 --json
    """
    from speccc.dse.baseline import baseline_rows
    from speccc.runtime.acceptance import parse_alphas
    rows = baseline_rows(target, draft, list(systems), spec=spec, gamma=gamma,
                         alphas=tuple(parse_alphas(acceptance)), batch=batch,
                         prompt_len=prompt_len, max_new_tokens=max_new_tokens, tp=tp,
                         cost_model=cost_model, best=not no_best, runtime=runtime,
                         seed=seed)
    if as_json:
        click.echo(json.dumps({"target": target, "draft": draft, "batch": batch,
                               "gamma": gamma, "acceptance": acceptance,
                               "prompt_len": prompt_len, "max_new_tokens": max_new_tokens,
                               "cost_model": cost_model,
                               "priced_by": "runtime" if runtime else "closed form",
                               "rows": rows}, indent=1))
        return
    from rich.table import Table
    t = Table("system", "baseline", "schedule", "tokens/s", "ms/token", "mJ/token",
              "speedup", "energy eff.", title=f"{target} (draft {draft}), batch {batch}, "
              f"γ {gamma}, α {acceptance}; vs {rows[0]['reference']}; "
              f"{'discrete-event runtime' if runtime else 'closed form'}",
              title_justify="left")
    for r in rows:
        if not r["feasible"]:
            t.add_row(r["system"], r["label"], "-", "does not fit", "-", "-", "-", "-")
            continue
        sched = r["schedule"] + (f" γ{r['gamma']}" if r["schedule"] != "none" else "")
        if r.get("draft_channels"):
            sched += f", draft on {r['draft_channels']} ch"
        if r["baseline"] == "speccc-best":
            sched += f", {r['mapping']}"
        t.add_row(r["system"] + (f" x{r['xpus']}" if r["xpus"] > 1 else ""), r["label"],
                  sched, f"{r['tokens_per_s']:.1f}", f"{r['itl_ms']:.4g}",
                  f"{r['energy_per_token_mj']:.4g}", f"{r['speedup']:.2f}x",
                  f"{r['energy_efficiency']:.2f}x")
    con = console()
    con.width = max(con.width, 150)     # eight columns: do not fold the labels
    con.print(t)
    for r in rows:
        if not r["feasible"]:
            con.print(f"  {r['system']} {r['baseline']}: {r['note']}")
