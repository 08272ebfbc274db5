"""`speccc run` (speculative decoding over the discrete-event runtime) and `speccc plot`."""
from __future__ import annotations

import json

import click

from speccc.cli.main import main
from speccc.errors import SpecccError

SCHEDULES = ("none", "serial", "overlap", "pipeinfer")


def _ids(text: str | None):
    if text is None:
        return None
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise SpecccError(f"--prompt-ids expects comma-separated integers, got {text!r}") \
            from None


def _check(gamma, acceptance, batch, max_new, draft, schedule):
    if gamma < 1:
        raise SpecccError(f"--gamma must be >= 1 (tokens drafted per verify), got {gamma}")
    if acceptance is not None and not 0.0 <= acceptance <= 1.0:
        raise SpecccError(f"--acceptance must be in [0, 1], got {acceptance}")
    if batch < 1:
        raise SpecccError(f"--batch must be >= 1, got {batch}")
    if max_new < 1:
        raise SpecccError(f"--max-new-tokens must be >= 1, got {max_new}")
    if draft is None and schedule != "none":
        raise SpecccError(f"--schedule {schedule} needs --draft MODEL.onnx")


@main.command("run", short_help="Run speculative decoding on the modeled NPU + PIM.")
@click.option("--target", required=True, type=click.Path(),
              help="Target model (.onnx, or a zoo GGUF model name: smollm2).")
@click.option("--draft", type=click.Path(),
              help="Draft model (.onnx, or a zoo GGUF model name: smollm2-int4).")
@click.option("--prompt", help="Prompt text (encoded with the model's GGUF tokenizer; the "
              "completion is decoded and printed).")
@click.option("--prompt-file", type=click.Path(dir_okay=False),
              help="Prompts, one per line; run one after another (the functional runtime "
                   "executes one request at a time), one report each.")
@click.option("--chat", is_flag=True, help="Wrap each prompt in the model's chat template "
              "(tokenizer.chat_template of its GGUF) as one user turn.")
@click.option("--tokenizer", type=click.Path(dir_okay=False),
              help="GGUF file whose tokenizer to use (default: the target's source GGUF).")
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
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False),
              help="Write a Chrome/Perfetto trace JSON here.")
@click.option("--print-schedule", is_flag=True, help="Print the @schedule IR to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run(target, draft, prompt, prompt_file, chat, tokenizer, prompt_ids, prompt_len,
        max_new_tokens, gamma, schedule, hw, acceptance, seed, temperature, batch, draft_channels, stages, p_accept, p_recovery,
        p_decay, max_inflight, placement, passes, max_context, cost_model, granularity,
        trace_path, print_schedule, as_json):
    """Run speculative decoding of TARGET with DRAFT on a modeled NPU + PIM system.

    \b
    speccc zoo llama-tiny --pair pair/ --mode decode
    speccc run --target pair/target.onnx --draft pair/draft.onnx --prompt-ids 1,2,3 \\
        --max-new-tokens 32 --gamma 4 --schedule serial --trace t.json
    speccc run --target 7b.onnx --draft 68m.onnx --acceptance 0.8 --schedule overlap
    speccc run --target smollm2 --draft smollm2-int4 --prompt "The capital of France is" \\
        --max-new-tokens 32 --schedule pipeinfer --hw hbm-pim --trace t.json --json
    """
    from speccc import text as textio
    from speccc.driver import write_text_atomic
    from speccc.passmanager import PassManager
    from speccc.runtime.metrics import dumps_trace
    from speccc.runtime.runner import RunConfig, load_pair, simulate
    _check(gamma, acceptance, batch, max_new_tokens, draft, schedule)
    texts = None
    if prompt is not None or prompt_file is not None:
        if prompt_ids is not None:
            raise SpecccError("give --prompt/--prompt-file or --prompt-ids, not both")
        texts = textio.read_prompts(prompt, prompt_file)
    elif chat:
        raise SpecccError("--chat needs --prompt or --prompt-file")
    extra = PassManager.parse(passes) if passes else None  # bad pipelines fail early
    tok = textio.tokenizer_for(target, tokenizer) if texts else None
    module, meta = load_pair(textio.resolve_model(target),
                             textio.resolve_model(draft) if schedule != "none" else None,
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
    prompts = [None]
    if texts:
        from speccc.runtime.runner import context_limit
        from speccc.runtime.schedule import Schedule
        ctx = max_context if max_context is not None else context_limit(
            module, Schedule.from_graph(module.graphs["schedule"]), meta)
        prompts = textio.encode_prompts(texts, tok, chat, ctx, max_new_tokens)
    results = []
    for p in prompts:  # one after another: the functional runtime runs one request
        cfg = RunConfig(max_new_tokens=max_new_tokens,
                        prompt=p.ids if p else _ids(prompt_ids), prompt_len=prompt_len,
                        acceptance=acceptance, seed=seed, temperature=temperature,
                        granularity=granularity, cost_model=cost_model,
                        max_context=max_context)
        rep, engine = simulate(module, cfg, meta)
        if p:
            rep = {"text": textio.completion(tok, rep["tokens"]), "prompt": p.text, **rep}
        results.append((rep, engine))
    if trace_path:  # only once every run succeeded: a failing command writes nothing
        for i, (rep, engine) in enumerate(results):
            path = trace_path if len(results) == 1 else _numbered(trace_path, i + 1)
            write_text_atomic(path, dumps_trace(engine, {"report": {
                k: v for k, v in rep.items() if k not in ("tokens", "text")}}))
    reps = [rep for rep, _ in results]
    if as_json:
        click.echo(json.dumps(reps[0] if prompt_file is None else reps, indent=1))
        return
    for rep in reps:
        _table(rep, target, draft)


def _numbered(path: str, i: int) -> str:
    """t.json -> t.2.json: one trace per prompt of --prompt-file."""
    from pathlib import Path
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{i}{p.suffix}"))


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _table(rep: dict, target, draft) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console()
    if "text" in rep:
        from rich.markup import escape
        con.print(f"[dim]{escape(rep['prompt'])}[/dim]{escape(rep['text'])}")
    elif rep["mode"] == "functional":
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
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="PNG file to write.")
@click.option("--title", default="", help="Plot title.")
def plot(trace, output, title):
    """Draw the timeline of a `speccc run --trace` file (one row per resource)."""
    from speccc.driver import write_bytes_atomic
    from speccc.runtime.plot import load_trace, plot_trace
    data = plot_trace(load_trace(trace), title)
    write_bytes_atomic(output, data)
    click.echo(f"wrote {output}")
