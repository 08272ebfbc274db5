"""`speccc run` (speculative decoding over the discrete-event runtime) and `speccc plot`."""
from __future__ import annotations


import click

from speccc.cli.main import console, main, out_file
from speccc.errors import SpecccError
from speccc.textio import dumps_json

SCHEDULES = ("none", "serial", "overlap", "pipeinfer")


def _ids(text: str | None):
    if text is None:
        return None
    items = [t for t in text.replace(" ", "").split(",") if t]
    most = LIMITS["prompt_len"][1]
    if not 1 <= len(items) <= most or any(len(t) > 19 for t in items):
        raise SpecccError(f"--prompt-ids takes 1 to {most} token ids of at most 19 digits, "
                          f"got {len(items)} item(s)")
    try:
        return [int(t) for t in items]
    except ValueError:
        raise SpecccError(f"--prompt-ids expects comma-separated integers, got {text[:40]!r}") \
            from None


# option -> (lowest, highest, what it is). The upper bounds are far beyond any published
# setting (SpecPIM sweeps gamma to 8, PipeInfer keeps a few runs in flight) and keep the
# simulated work bounded: `--gamma 1000000` or `--batch 1000000` ran for hours.
LIMITS = {
    "gamma": (1, 256, "tokens drafted per verify"),
    "batch": (1, 4096, "concurrent requests"),
    "max_new_tokens": (1, 1 << 16, "tokens to generate"),
    "prompt_len": (1, 1 << 16, "synthetic prompt tokens"),
    "stages": (1, 256, "pipeline stages"),
    "max_inflight": (1, 256, "speculative runs in flight"),
    "draft_channels": (0, 4096, "draft PIM channels"),
    "max_context": (1, 1 << 20, "context length"),
    "acceptance": (0.0, 1.0, "acceptance rate"),
    "temperature": (0.0, 1e4, "sampling temperature"),
    "p_accept": (0.0, 1.0, "confidence cutoff"),
    "p_recovery": (0.0, 1.0, "cutoff recovery"),
    "p_decay": (0.0, 1.0, "cutoff decay"),
}


def check_ranges(values: dict, limits: dict = LIMITS) -> None:
    """Every option in `limits` that is set lies in its range (NaN is in no range)."""
    for key, (lo, hi, what) in limits.items():
        v = values.get(key)
        if v is not None and not lo <= v <= hi:
            bound = (f"in [{lo:g}, {hi:g}]" if isinstance(lo, float)
                     else f">= {lo}" if v < lo else f"<= {hi}")
            raise SpecccError(f"--{key.replace('_', '-')} must be {bound} ({what}), got {v}")


def _check(draft, schedule, **values):
    check_ranges(values)
    if draft is None and schedule != "none":
        raise SpecccError(f"--schedule {schedule} needs --draft MODEL.onnx")


@main.command("run", short_help="Run speculative decoding on the modeled NPU + PIM.")
@click.option("--target", required=True, type=click.Path(), help="Target model (.onnx).")
@click.option("--draft", type=click.Path(), help="Draft model (.onnx).")
@click.option("--prompt-ids", help="Prompt token ids, e.g. 1,2,3.")
@click.option("--prompt-len", type=int, default=8, show_default=True,
              help="Without --prompt-ids: a synthetic prompt of this many tokens.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True)
@click.option("--gamma", type=int, default=4, show_default=True,
              help="Tokens drafted per verify (draft depth for pipeinfer).")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="serial", show_default=True)
@click.option("--hw", default="hbm-pim", show_default=True, help="Hardware preset or .toml.")
@click.option("--acceptance", type=float, help="Synthetic acceptance rate (shapes-only "
              "models; no functional execution).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True,
              help="0: greedy; > 0: sampling with rejection sampling.")
@click.option("--batch", type=int, default=1, show_default=True,
              help="Concurrent requests (with --acceptance; none/serial).")
@click.option("--draft-channels", type=int, default=0, show_default=True,
              help="PIM channels of the draft (0: serial shares all, others auto).")
@click.option("--stages", type=int, default=1, show_default=True,
              help="pipeinfer: target pipeline stages (channel groups).")
@click.option("--p-accept", type=float, default=0.5, show_default=True)
@click.option("--p-recovery", type=float, default=0.0, show_default=True)
@click.option("--p-decay", type=float, default=0.0, show_default=True)
@click.option("--max-inflight", type=int, default=4, show_default=True,
              help="pipeinfer: KV partitions = speculative runs in flight.")
@click.option("--placement", type=click.Choice(["auto", "default"]), default="auto",
              show_default=True, help="Ops without a device attribute: auto = faster "
              "of npu/pim per (T, P); default = the cost model's default device.")
@click.option("--passes", default="", help="Passes to run before speculate, e.g. "
              "'partition{mapping=specpim}' (ops keep the device it assigns).")
@click.option("--max-context", type=int, help="Override the model's context length.")
@click.option("--cost-model", type=click.Choice(["targets", "roofline"]), default="targets",
              show_default=True, help="Registered target estimators, or the rooflines.")
@click.option("--granularity", type=click.Choice(["op", "stage"]), default="op",
              show_default=True, help="Trace tasks per op, or one per pipeline stage.")
@click.option("--trace", "trace_path", callback=out_file,
              help="Write a Chrome/Perfetto trace JSON here.")
@click.option("--print-schedule", is_flag=True, help="Print the @schedule IR to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run(target, draft, prompt_ids, prompt_len, max_new_tokens, gamma, schedule, hw,
        acceptance, seed, temperature, batch, draft_channels, stages, p_accept, p_recovery,
        p_decay, max_inflight, placement, passes, max_context, cost_model, granularity,
        trace_path, print_schedule, as_json):
    """Run speculative decoding of TARGET with DRAFT on a modeled NPU + PIM system.

    \b
    speccc zoo llama-tiny --pair pair/ --mode decode
    speccc run --target pair/target.onnx --draft pair/draft.onnx --prompt-ids 1,2,3 \\
        --max-new-tokens 32 --gamma 4 --schedule serial --trace t.json
    speccc run --target 7b.onnx --draft 68m.onnx --acceptance 0.8 --schedule overlap
    """
    from speccc.driver import write_text_atomic
    from speccc.passmanager import PassManager
    from speccc.runtime.metrics import dumps_trace
    from speccc.runtime.runner import RunConfig, load_pair, simulate
    _check(draft, schedule, gamma=gamma, acceptance=acceptance, batch=batch,
           max_new_tokens=max_new_tokens, prompt_len=prompt_len, stages=stages,
           max_inflight=max_inflight, draft_channels=draft_channels, max_context=max_context,
           temperature=temperature, p_accept=p_accept, p_recovery=p_recovery,
           p_decay=p_decay)
    extra = PassManager.parse(passes) if passes else None  # bad pipelines fail early
    module, meta = load_pair(target, draft if schedule != "none" else None,
                             shapes_only=acceptance is not None)
    opts = dict(schedule=schedule, gamma=gamma, hw=hw, batch=batch, placement=placement,
                draft_channels=draft_channels, stages=stages, p_accept=p_accept,
                p_recovery=p_recovery, p_decay=p_decay, max_inflight=max_inflight)
    spec = ",".join(f"{k}={v}" for k, v in opts.items())
    if extra is not None:
        extra.run(module)
    PassManager.parse(f"speculate{{{spec}}}").run(module)
    if print_schedule:
        from speccc.ir.printer import print_graph
        click.echo(print_graph(module.graphs["schedule"]), err=True, nl=False)
    cfg = RunConfig(max_new_tokens=max_new_tokens, prompt=_ids(prompt_ids),
                    prompt_len=prompt_len, acceptance=acceptance, seed=seed,
                    temperature=temperature, granularity=granularity,
                    cost_model=cost_model, max_context=max_context)
    rep, engine = simulate(module, cfg, meta)
    if trace_path:
        write_text_atomic(trace_path, dumps_trace(engine, {"report": {
            k: v for k, v in rep.items() if k != "tokens"}}))
    if as_json:
        click.echo(dumps_json(rep, indent=1))
        return
    _table(rep, target, draft)


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _table(rep: dict, target, draft) -> None:
    from rich.table import Table
    con = console()
    if rep["mode"] == "functional":
        con.print("tokens: " + " ".join(map(str, rep["tokens"])))
    t = Table(title=f"speccc run: {rep['schedule']} (gamma {rep['gamma']}, {rep['hw']}, "
              f"{rep['mode']})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    pos = ", ".join(_fmt(p, 2) for p in rep["per_position_acceptance"])
    rows = [("generated tokens", rep["generated_tokens"]),
            ("tokens/s (modeled)", rep["tokens_per_s"]),
            ("decode tokens/s", rep["decode_tokens_per_s"]),
            ("time to first token (ms)", rep["ttft_ms"]),
            ("inter-token latency (ms)", rep["itl_ms"]),
            ("mean acceptance length", rep["mean_acceptance_length"]),
            ("acceptance rate", rep["acceptance_rate"]),
            ("per-position acceptance", pos or "-"),
            ("drafted: accepted/rejected/cancelled",
             "/".join(str(v) for v in rep["drafted_tokens"].values())),
            ("runs (cancelled)", ", ".join(f"{k} {v} ({rep['cancelled_runs'].get(k, 0)})"
                                           for k, v in rep["runs"].items())),
            ("energy (mJ)", rep["energy_mj"]),
            ("energy/token (mJ)", rep["energy_per_token_mj"])]
    rows += [(f"utilization {r}", f"{u:.1%}") for r, u in rep["utilization"].items()]
    for k, v in rows:
        t.add_row(k, _fmt(v))
    con.print(t)


@main.command("plot", short_help="Draw a --trace file as a timeline PNG.")
@click.argument("trace", type=click.Path())
@click.option("-o", "--output", required=True, callback=out_file,
              help="PNG file to write.")
@click.option("--title", default="", help="Plot title.")
def plot(trace, output, title):
    """Draw the timeline of a `speccc run --trace` file (one row per resource)."""
    from speccc.driver import write_bytes_atomic
    from speccc.runtime.plot import load_trace, plot_trace
    data = plot_trace(load_trace(trace), title)
    write_bytes_atomic(output, data)
    click.echo(f"wrote {output}")
