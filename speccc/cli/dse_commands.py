"""`speccc dse`: search γ, schedule, op mapping, channel split, batch and hardware knobs
for a draft/target pair; write points.csv, pareto.json/png, best.toml and report.md."""
from __future__ import annotations

import json
import time

import click

from speccc.cli.main import main
from speccc.cli.progress import progress_bars, progress_option
from speccc.errors import SpecccError


@main.command("dse", short_help="Design-space exploration: Pareto front of latency vs energy.")
@click.option("--target", help="Target model: ONNX file or zoo name (llama2-7b).")
@click.option("--draft", help="Draft model: ONNX file or zoo name (llama-68m).")
@click.option("--suite", "suite", is_flag=True,
              help="Instead run the model-pair suite (speccc/dse/suite.toml) and write "
              "DIR/suite.md and suite.json: each pair's best point against target-only "
              "decoding and every fixed mapping, with the geomean row.")
@click.option("--suite-file", type=click.Path(dir_okay=False),
              help="With --suite: another suite file (same schema).")
@click.option("--pair", "pairs", multiple=True, metavar="DRAFT--TARGET",
              help="With --suite: run only these pairs (repeat).")
@click.option("--hw", default="aim-gddr6", show_default=True,
              help="Hardware: a device or system preset (a100-80g, attacc: mappings its "
              "devices lack are infeasible points) or a .toml of either (the space "
              "file's `hw` list wins).")
@click.option("--space", "space_path", type=click.Path(dir_okay=False),
              help="Space TOML (docs/dse.md); default: γ 1-16 × none/serial/overlap × "
              "five mappings on --hw.")
@click.option("--strategy", type=click.Choice(["grid", "nsga2"]), default="grid",
              show_default=True, help="Every point, or pymoo's NSGA-II.")
@click.option("--objective", type=click.Choice(["latency", "energy", "edp"]),
              default="latency", show_default=True, help="What `best` minimizes.")
@click.option("--acceptance", help="Acceptance rate α, or α1,α2,... per block position.")
@click.option("--acceptance-trace", type=click.Path(dir_okay=False),
              help="A `speccc run --json` report whose verify outcomes set the acceptance.")
@click.option("--batch", multiple=True, type=int, help="Batch sizes (repeat); replaces the "
              "space's.")
@click.option("--prompt-len", type=int, help="Prompt tokens (default 8).")
@click.option("--max-new-tokens", type=int, help="Tokens generated per request (default 128).")
@click.option("--executor", type=click.Choice(["local", "dask", "ray"]), default="local",
              show_default=True, help="Where chunks run.")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Worker processes (local pool / LocalCluster / Ray).")
@click.option("--address", help="Running Dask scheduler (tcp://host:8786) or Ray cluster.")
@click.option("--chunk", type=int, default=256, show_default=True, help="Points per task.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds NSGA-II, the confirmation sample and the runtime's draws.")
@click.option("--population", type=int, default=40, show_default=True, help="NSGA-II.")
@click.option("--generations", type=int, default=25, show_default=True, help="NSGA-II.")
@click.option("--confirm", type=int, default=6, show_default=True,
              help="Pareto points re-run on the runtime (plus --confirm-random others).")
@click.option("--confirm-random", type=int, default=4, show_default=True,
              help="Random non-Pareto points also re-run on the runtime (checks the "
                   "sweep's prices off the front).")
@click.option("--cost-model", type=click.Choice(["roofline", "targets", "targets-fast"]),
              default="roofline", show_default=True,
              help="Forward prices (as `speccc run --cost-model`): roofline (fast), the targets' "
                   "emulator costs, or targets-fast (PIM GEMVs in closed form).")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Directory for points.csv, pareto.json/png, best.toml, report.md; "
              "rerunning into it resumes. With --suite (default: suite/): one "
              "subdirectory per pair, plus suite.md and suite.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@progress_option
def dse(target, draft, suite, suite_file, pairs, hw, space_path, strategy, objective,
        acceptance, acceptance_trace, batch, prompt_len, max_new_tokens, executor, jobs,
        address, chunk, seed, population, generations, confirm, confirm_random,
        cost_model, output, as_json, progress):
    """Explore the design space of speculative decoding of TARGET with DRAFT.

    \b
    speccc dse --target llama2-7b --draft llama-68m --acceptance 0.8 -o out/
    speccc dse --target llama2-7b --draft llama-68m --acceptance 0.8 --space s.toml \\
        --strategy nsga2 --executor dask --jobs 2 -o out/
    speccc dse --suite --jobs 2 -o suite/        # every pair of speccc/dse/suite.toml
    """
    from speccc.dse.driver import prepare, run
    if chunk < 1:
        raise SpecccError(f"--chunk must be >= 1, got {chunk}")
    if suite:
        _suite(locals())
        return
    if suite_file or pairs:
        raise SpecccError("--suite-file and --pair go with --suite")
    for name, value in (("--target", target), ("--draft", draft), ("-o", output)):
        if value is None:
            raise SpecccError(f"give {name} (or --suite)")
    study = prepare(target, draft, hw, space_path, acceptance, acceptance_trace,
                    list(batch), prompt_len, max_new_tokens, seed, cost_model)
    t0 = time.perf_counter()
    with progress_bars(progress) as bars:
        total = (study.space.size if strategy == "grid"
                 else min(study.space.size, population * generations))
        task, done = bars.add("dse: points", total=total), [0]

        def advance(n):
            done[0] += n
            rate = done[0] / max(time.perf_counter() - t0, 1e-9)
            bars.update(task, completed=done[0], description=f"dse: {rate:,.0f} points/s")
        summary = run(study, output, strategy, objective, executor, jobs, address, chunk,
                      dict(population=population, generations=generations), confirm,
                      confirm_random, advance)
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    b = summary["best"]
    click.echo(f"{summary['points']} points ({summary['evaluated']} evaluated now, "
               f"{summary['points_per_s']:,.0f} points/s), {summary['front']} on the "
               f"Pareto front; wrote {output}/points.csv, pareto.json, pareto.png, "
               "best.toml, report.md")
    click.echo(f"best by {objective}: id {b['id']} {b['schedule']} γ{b['gamma']} "
               f"{b['mapping']} draft_channels {b['draft_channels']} batch {b['batch']}: "
               f"{b['tokens_per_s']:.1f} tokens/s, {b['itl_ms']:.4g} ms/token, "
               f"{b['energy_per_token_mj']:.4g} mJ/token")
    if summary["max_confirm_error"] is not None:
        click.echo(f"closed form vs runtime on {summary['confirmed']} points: worst "
                   f"relative error {summary['max_confirm_error']:.1%} (report.md)")


# Options that shape one pair's study or its search: the suite file sets the first per
# pair, and the suite sweeps its whole (small) grid by latency without confirmation.
_PAIR_ONLY = ("target", "draft", "hw", "space_path", "acceptance", "acceptance_trace",
              "batch", "prompt_len", "max_new_tokens", "strategy", "objective",
              "population", "generations", "confirm", "confirm_random")


def _suite(opts: dict) -> None:
    from click.core import ParameterSource

    from speccc.dse.suite import load_suite, run_suite
    ctx = click.get_current_context()
    given = [f"--{k.replace('_path', '').replace('_', '-')}" for k in _PAIR_ONLY
             if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE]
    if given:
        raise SpecccError("--suite takes models, hardware, space and workload from the "
                          "suite file and sweeps its grid by latency: drop "
                          f"{', '.join(given)}")
    suite = load_suite(opts["suite_file"])
    out = opts["output"] or "suite"

    def progress(pair, r):
        b = r["best"]
        what = (f"best {b['schedule']} γ{b['gamma']} {b['mapping']}: {b['itl_ms']:.4g} "
                f"ms/token, {r['speedup'].get('target_only', 0):.2f}× target-only"
                if b else f"{r['status']}: {r['note']}")
        click.echo(f"{pair.draft} -> {pair.target} ({r['stacks']} stacks, "
                   f"{r['seconds']:.0f} s): {what}")
    summary = run_suite(suite, out, executor=opts["executor"], jobs=opts["jobs"],
                        address=opts["address"], chunk=opts["chunk"], seed=opts["seed"],
                        cost_model=opts["cost_model"], only=list(opts["pairs"]),
                        progress=progress)
    if opts["as_json"]:
        click.echo(json.dumps(summary, indent=1))
        return
    gm = summary["geomean"]
    click.echo(f"geomean over {len(summary['geomean_over'])} pairs: "
               f"{gm['speedup']['target_only'] or 0:.2f}× speedup, "
               f"{gm['energy_efficiency']['target_only'] or 0:.2f}× energy efficiency vs "
               f"target-only decoding; wrote {out}/suite.md, suite.json")
