"""`speccc run` (speculative decoding over the discrete-event runtime) and `speccc plot`."""
from __future__ import annotations

import click

from speccc.cli.main import main, out_file
from speccc.cli.progress import progress_bars, progress_option
from speccc.cli.run_report import compare_table, report_table, suffixed_trace_path, with_text
from speccc.errors import SpecccError
from speccc.textio import dumps_json

SCHEDULES = ("none", "serial", "overlap", "pipeinfer")
# knob -> the schedules it shapes (others in a comparison run without it)
SCHEDULE_KNOBS = {"p_min": ("serial", "overlap"), "adaptive": ("serial", "overlap"),
                  "rounds": ("pipeinfer",)}


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
    "p_min": (0.0, 1.0, "draft confidence cutoff"),
}


def check_ranges(values: dict, limits: dict = LIMITS) -> None:
    """Every option in `limits` that is set lies in its range (NaN is in no range)."""
    for key, (lo, hi, what) in limits.items():
        v = values.get(key)
        if v is not None and not lo <= v <= hi:
            bound = (f"in [{lo:g}, {hi:g}]" if isinstance(lo, float)
                     else f">= {lo}" if v < lo else f"<= {hi}")
            raise SpecccError(f"--{key.replace('_', '-')} must be {bound} ({what}), got {v}")


def _configs(schedule: str, gamma: str) -> list[tuple[str, int]]:
    """(schedule, gamma) pairs to run: `--schedule a,b --gamma 2,4` is their product
    (none once); comparing several adds none as the reference."""
    names = [t.strip() for t in schedule.split(",") if t.strip()]
    bad = [n for n in names if n not in SCHEDULES]
    if bad or not names:
        raise SpecccError(f"--schedule takes {', '.join(SCHEDULES)} (comma-separated to "
                          f"compare), got {schedule!r}")
    try:
        gammas = [int(t) for t in gamma.split(",") if t.strip()]
    except ValueError:
        raise SpecccError(f"--gamma expects integers (comma-separated to compare), got "
                          f"{gamma!r}") from None
    if not gammas:
        raise SpecccError(f"--gamma must be >= 1 (tokens drafted per verify), got {gamma}")
    for g in gammas:
        check_ranges({"gamma": g})
    out = [(n, g) for n in dict.fromkeys(names) for g in (gammas[:1] if n == "none"
                                                             else gammas)]
    if len(out) > 1 and "none" not in names:
        out.insert(0, ("none", gammas[0]))
    return out


def _check(configs, draft, **values):
    check_ranges(values)
    spec = [s for s, _ in configs if s != "none"]
    if draft is None and spec:
        raise SpecccError(f"--schedule {spec[0]} needs --draft MODEL.onnx")


@main.command("run", short_help="Run speculative decoding on the modeled NPU + PIM.")
@click.option("--target", type=click.Path(),
              help="Target model: ONNX file or zoo name (llama2-7b; smollm2 has weights "
              "and a tokenizer).")
@click.option("--draft", type=click.Path(),
              help="Draft model: ONNX file or zoo name (llama-68m, smollm2-int4).")
@click.option("--prompt", help="Prompt text (encoded with the model's GGUF tokenizer; the "
              "completion is decoded and printed).")
@click.option("--prompt-file", type=click.Path(dir_okay=False),
              help="Prompts, one per line, decoded together as one batch (one request "
              "each).")
@click.option("--chat", is_flag=True, help="Wrap each prompt in the model's chat template "
              "(tokenizer.chat_template of its GGUF) as one user turn.")
@click.option("--tokenizer", type=click.Path(dir_okay=False),
              help="GGUF file whose tokenizer to use (default: the target's source GGUF).")
@click.option("--module", "module_path", type=click.Path(dir_okay=False),
              help="Run the @schedule program of this .ir file as written (e.g. "
              "OUT/ir/module.ir from `speccc compile --draft`, edited or not). Its "
              "@target/@draft are used unless --target/--draft give the models (with "
              "weights); schedule options (--schedule, --gamma, ...) do not apply.")
@click.option("--prompt-ids", help="Prompt token ids, e.g. 1,2,3.")
@click.option("--prompt-len", type=int, default=8, show_default=True,
              help="Without --prompt-ids: a synthetic prompt of this many tokens.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True,
              help="Tokens to generate per request.")
@click.option("--gamma", default="4", show_default=True,
              help="Tokens drafted per verify (draft depth for pipeinfer); 2,4,8 compares.")
@click.option("--schedule", default="serial", show_default=True,
              help=f"One of {', '.join(SCHEDULES)}; several, comma-separated, run with "
              "common random numbers and print one comparison table (none is the "
              "reference).")
@click.option("--hw", default="hbm-pim", show_default=True, help="Hardware preset or .toml; "
              "a [dse] table in it (speccc dse's best.toml) sets the schedule, gamma, "
              "draft channels, batch and mapping not given here.")
@click.option("--acceptance", help="Synthetic acceptance (shapes-only models; no "
              "functional execution): a rate A (every drafted token right with probability "
              "~A), or A1,A2,... per position in a block (the last repeats).")
@click.option("--acceptance-trace", type=click.Path(dir_okay=False),
              help="Replay recorded acceptance instead: a `speccc run --json` report (its "
              "verify_outcomes), one recorded verify per drafted block.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of sampling and of synthetic acceptance draws.")
@click.option("--numerics", type=click.Choice(["reference", "device"]), default="reference",
              show_default=True, help="Functional runs: reference computes in fp32; device "
              "runs PIM ops through the emulator in the preset's MAC precision (slower). "
              "Lossless means equal to --schedule none under the same numerics.")
@click.option("--temperature", type=float, default=0.0, show_default=True,
              help="0: greedy; > 0: sampling with rejection sampling.")
@click.option("--batch", type=int, default=1, show_default=True,
              help="Requests decoded together, each with its own tokens, KV and "
              "acceptance (none/serial/overlap in lockstep; pipeinfer: each request its "
              "own bursts on the shared pipeline); functional runs give each the prompt.")
@click.option("--draft-channels", type=int, default=0, show_default=True,
              help="PIM channels of the draft (0: serial shares all, others auto).")
@click.option("--stages", type=int, default=1, show_default=True,
              help="pipeinfer: target pipeline stages (channel groups).")
@click.option("--p-accept", type=float, default=0.5, show_default=True,
              help="pipeinfer: confidence cutoff; a draft stops below p_accept + "
              "iter*p_recovery - n_rejected*p_decay, and a burst ends when it reaches 1.")
@click.option("--p-recovery", type=float, default=0.0, show_default=True,
              help="pipeinfer: cutoff increase per speculative run of a burst.")
@click.option("--p-decay", type=float, default=0.0, show_default=True,
              help="pipeinfer: cutoff decrease per draft that yielded no token.")
@click.option("--p-min", type=float, default=0.0, show_default=True,
              help="serial/overlap: a draft stops when its confidence (top-1 probability) "
              "falls below this (0: off).")
@click.option("--adaptive", is_flag=True, help="serial/overlap: each request drafts the "
              "length (<= --gamma) that maximizes expected tokens per unit time under its "
              "running acceptance estimate.")
@click.option("--max-inflight", type=int, default=4, show_default=True,
              help="pipeinfer: KV partitions = speculative runs in flight (per request).")
@click.option("--rounds", type=click.Choice(["request", "batch"]), default="request",
              show_default=True, help="pipeinfer with --batch > 1: each burst round "
              "drafts and launches a chained run for one request (round-robin) or for "
              "every request that may speculate (one batched draft and run).")
@click.option("--placement", type=click.Choice(["auto", "default"]), default="auto",
              show_default=True, help="Ops without a device attribute: auto = faster "
              "of npu/pim per (T, P); default = the cost model's default device.")
@click.option("--passes", default="", help="Passes to run before speculate, e.g. "
              "'partition{mapping=specpim}' (ops keep the device it assigns).")
@click.option("--max-context", type=int, help="Override the model's context length.")
@click.option("--cost-model", type=click.Choice(["targets", "targets-fast", "roofline"]),
              default="targets", show_default=True,
              help="Registered target estimators; targets-fast: the same with PIM GEMVs "
              "in closed form where it is within 5% of the emulator (faster cold "
              "calibration); or the rooflines.")
@click.option("--granularity", type=click.Choice(["op", "stage"]), default="op",
              show_default=True, help="Trace tasks per op, or one per pipeline stage.")
@click.option("--trace", "trace_path", callback=out_file,
              help="Write a Chrome/Perfetto trace JSON here.")
@click.option("--print-schedule", is_flag=True, help="Print the @schedule IR to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@progress_option
def run(progress, **options):
    """Run speculative decoding of TARGET with DRAFT on a modeled NPU + PIM system.

    \b
    speccc zoo llama-tiny --pair pair/ --mode decode
    speccc run --target pair/target.onnx --draft pair/draft.onnx --prompt-ids 1,2,3 \\
        --max-new-tokens 32 --gamma 4 --schedule serial --trace t.json
    speccc run --target 7b.onnx --draft 68m.onnx --acceptance 0.8 --schedule overlap
    speccc run --target 7b.onnx --draft 68m.onnx --acceptance 0.8 --hw aim-gddr6 \\
        --schedule none,serial,overlap,pipeinfer --gamma 2,4,8      # one comparison table
    speccc run --target smollm2 --draft smollm2-int4 --prompt "The capital of France is" \\
        --max-new-tokens 32 --schedule pipeinfer --hw hbm-pim --trace t.json --json
    """
    with progress_bars(progress) as bars:
        _run(**options, bars=bars)


def _run(target, draft, prompt, prompt_file, chat, tokenizer, module_path, prompt_ids,
         prompt_len, max_new_tokens, gamma,
         schedule, hw, acceptance, acceptance_trace, seed, numerics, temperature, batch,
         draft_channels, stages, p_accept, p_recovery, p_decay, p_min, adaptive,
         max_inflight, rounds, placement, passes, max_context, cost_model, granularity, trace_path,
         print_schedule, as_json, bars):
    from speccc import text as textio
    from speccc.driver import write_text_atomic
    from speccc.passmanager import PassManager
    from speccc.runtime.metrics import dumps_trace
    from speccc.runtime.runner import RunConfig, load_pair, simulate
    from speccc.runtime.acceptance import load_trace, parse_alphas
    alphas = parse_alphas(acceptance) if acceptance is not None else None
    trace = load_trace(acceptance_trace) if acceptance_trace is not None else None
    synthetic = alphas is not None or trace is not None
    if module_path is None:
        schedule, gamma, draft_channels, batch, passes = _dse_point(
            hw, schedule=schedule, gamma=gamma, draft_channels=draft_channels, batch=batch,
            passes=passes).values()
    configs = _configs(schedule, gamma)
    from speccc.hw import load_hw
    load_hw(hw)   # a device preset: system presets (GPUs) are for `speccc baseline`
    opts = dict(hw=hw, batch=batch, placement=placement,
                draft_channels=draft_channels, stages=stages, p_accept=p_accept,
                p_recovery=p_recovery, p_decay=p_decay, max_inflight=max_inflight,
                **({"p_min": p_min} if p_min else {}),
                **({"adaptive": "true"} if adaptive else {}),
                **({"rounds": rounds} if rounds != "request" else {}))
    if module_path is not None:
        module, meta = _module_run(module_path, target, draft, synthetic, passes,
                                   ["schedule", "gamma", *opts])
        configs = [None]
    else:
        if target is None:
            raise SpecccError("give --target MODEL.onnx (and --draft), or --module FILE.ir")
        _check(configs, draft, batch=batch, max_new_tokens=max_new_tokens,
               prompt_len=prompt_len, stages=stages, max_inflight=max_inflight,
               draft_channels=draft_channels, max_context=max_context,
               temperature=temperature, p_accept=p_accept, p_recovery=p_recovery,
               p_decay=p_decay, p_min=p_min)
        extra = PassManager.parse(passes) if passes else None  # bad pipelines fail early
        needs_draft = any(s != "none" for s, _ in configs)
        loading = bars.add("run: load models")
        module, meta = load_pair(textio.resolve_model(target),
                                 textio.resolve_model(draft) if needs_draft else None,
                                 shapes_only=synthetic)
        bars.update(loading, total=1, completed=1)
        if extra is not None:
            extra.run(module)
    texts, tok, prompts = _texts(prompt, prompt_file, chat, prompt_ids), None, None
    if texts:
        from types import SimpleNamespace

        from speccc.runtime.runner import context_limit
        tok = textio.tokenizer_for(target, tokenizer)
        models = SimpleNamespace(target="target", draft="draft", speculative="draft" in
                                 module.graphs)
        ctx = max_context if max_context is not None else context_limit(module, models, meta)
        prompts = textio.encode_prompts(texts, tok, chat, ctx, max_new_tokens)
        if len(prompts) > 1:
            opts["batch"] = len(prompts)
    cfg = RunConfig(max_new_tokens=max_new_tokens, prompt=_ids(prompt_ids),
                    prompt_len=prompt_len, acceptance=alphas, acceptance_trace=trace,
                    seed=seed, numerics=numerics, temperature=temperature,
                    granularity=granularity,
                    cost_model=cost_model, max_context=max_context,
                    prompts=[p.ids for p in prompts] if prompts else None)
    reports = []
    for config in configs:
        if config is not None:
            knobs = {k: v for k, v in opts.items()
                     if config[0] in SCHEDULE_KNOBS.get(k, (config[0],))}
            spec = ",".join(f"{k}={v}" for k, v in dict(
                schedule=config[0], gamma=config[1], **knobs).items())
            PassManager.parse(f"speculate{{{spec}}}").run(module)
        if print_schedule:
            from speccc.ir.printer import print_graph
            click.echo(print_graph(module.graphs["schedule"]), err=True, nl=False)
        cfg.progress = bars.callback("run: " + (f"{config[0]} γ{config[1]}" if config
                                                else "module") + ", tokens")
        rep, engine = simulate(module, cfg, meta)
        if prompts:
            rep = with_text(rep, prompts, tok)
        label = f"[{rep['schedule']} gamma {rep['gamma']}] " if len(configs) > 1 else ""
        for w in rep["warnings"]:
            click.echo(f"speccc: warning: {label}{w}", err=True)
        if trace_path:
            path = trace_path if len(configs) == 1 else suffixed_trace_path(trace_path, rep)
            write_text_atomic(path, dumps_trace(engine, {"report": {
                k: v for k, v in rep.items() if k not in ("tokens", "text", "requests")}}))
        reports.append(rep)
    if as_json:
        click.echo(dumps_json(reports[0] if len(reports) == 1 else reports, indent=1))
    elif len(reports) == 1:
        report_table(reports[0], target, draft)
    else:
        compare_table(reports)


def _texts(prompt, prompt_file, chat, prompt_ids):
    from speccc import text as textio
    if prompt is not None or prompt_file is not None:
        if prompt_ids is not None:
            raise SpecccError("give --prompt/--prompt-file or --prompt-ids, not both")
        return textio.read_prompts(prompt, prompt_file)
    if chat:
        raise SpecccError("--chat needs --prompt or --prompt-file")
    return None


def _dse_point(hw: str, **values) -> dict:
    """`--hw FILE` with a [dse] table (`speccc dse`'s best.toml): the point it records
    fills the options the command line did not give (schedule, gamma, draft channels,
    batch, and the mapping as a partition pass)."""
    from click.core import ParameterSource

    from speccc.hw.config import load_hw
    point = load_hw(hw).dse
    if not point:
        return values
    ctx = click.get_current_context()
    out = dict(values)
    for key in values:
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            continue
        if key == "passes":   # the mapping as `speccc dse` solved it (dse/mapping.py)
            from speccc.dse.mapping import parse_spans, point_passes
            passes = point_passes(point, hw, point["partition_p"],
                                  spans=parse_spans(point.get("channels"), f"{hw}: [dse] "
                                                    "channels"),
                                  cost_model=point.get("cost_model"))
            if passes:        # auto is --placement auto, the default
                out[key] = passes
        else:
            out[key] = str(point[key]) if key in ("schedule", "gamma") else point[key]
    return out


def _module_run(path, target, draft, synthetic, passes, schedule_options):
    """(module, meta) for `run --module`: the file's @schedule, over the file's models or
    the ONNX models given."""
    from click.core import ParameterSource

    from speccc.ir.parser import parse_file
    from speccc.runtime.program import GRAPH
    from speccc.runtime.runner import load_pair
    ctx = click.get_current_context()
    given = [f"--{k.replace('_', '-')}" for k in [*schedule_options, "passes"]
             if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE]
    if given:
        raise SpecccError(f"--module runs the schedule written in {path}; "
                          f"{', '.join(given)} do not apply (edit the file instead)")
    text = parse_file(path)
    if GRAPH not in text.graphs:
        raise SpecccError("has no @schedule graph (write one with `speccc compile T --draft "
                          "D -o OUT` or `speccc opt -p speculate`)", location=str(path))
    if target is None:
        return text, {}
    module, meta = load_pair(target, draft, shapes_only=synthetic)
    module.add_graph(text.graphs[GRAPH])
    return module, meta


@main.command("plot", short_help="Draw --trace files as one timeline PNG.")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, callback=out_file,
              help="PNG file to write.")
@click.option("--title", default="", help="Plot title.")
@click.option("--window", help="Zoom to START:END milliseconds.")
def plot(traces, output, title, window):
    """Draw `speccc run --trace` files on one time axis: one panel per trace, one row per
    resource, a tick per emitted token; cancelled work hatched.

    \b
    speccc run ... --schedule none,serial,overlap --trace t.json   # t.none.json, ...
    speccc plot t.none.json t.serial-g4.json t.overlap-g4.json -o cmp.png --window 0:5
    """
    from speccc.driver import write_bytes_atomic
    from speccc.runtime.plot import load_trace, parse_window, plot_traces
    data = plot_traces([load_trace(t) for t in traces], title, parse_window(window))
    write_bytes_atomic(output, data)
    click.echo(f"wrote {output}")
