"""Core commands: opt, exec, compile (zoo and ops: model_commands.py)."""
from __future__ import annotations

import sys

import click

from speccc.cli.main import console, main, out_dir, out_file
from speccc.cli.progress import progress_bars, progress_option
from speccc.errors import SpecccError
from speccc.textio import dumps_json

# speccc.driver (and with it numpy, networkx, onnx) is imported inside each command, not
# here: `speccc --help` imports this module (tests/test_startup.py pins the cost). Two of
# its constants are needed to declare options; tests/test_startup.py checks they agree.
DEFAULT_HW = "hbm-pim"                # driver.DEFAULT_HW
PRECISIONS = ("fp32", "fp16")         # tuple(driver.PRECISIONS)


def _echo_ir(spec: str, module) -> None:
    from speccc.ir.printer import print_module
    click.echo(f"// ----- IR after {spec} -----", err=True)
    click.echo(print_module(module), err=True, nl=False)


def _print_timings(pm) -> None:
    from rich.table import Table
    table = Table(title="pass timings")
    table.add_column("pass")
    table.add_column("seconds", justify="right")
    for name, sec in pm.timings:
        table.add_row(name, f"{sec:.4f}")
    table.add_row("total", f"{sum(s for _, s in pm.timings):.4f}")
    console(stderr=True).print(table)


def pipeline_options(fn):
    fn = click.option("--time-passes", is_flag=True, help="Print a table of pass wall times.")(fn)
    fn = click.option("--verify-each/--no-verify-each", default=True, show_default=True,
                      help="Run the IR verifier after every pass.")(fn)
    fn = click.option("--print-ir-after", "print_after", default="", metavar="PASS[,PASS]|all",
                      help="Print the IR (to stderr) after the named passes, or all.")(fn)
    return fn


def _pm_kwargs(print_after: str, verify_each: bool) -> dict:
    from speccc.passmanager import all_passes
    after = "all" if print_after == "all" else {s for s in print_after.split(",") if s}
    unknown = sorted(set() if after == "all" else after - set(all_passes()))
    if unknown:
        raise SpecccError(f"--print-ir-after: unknown pass(es) {', '.join(unknown)} "
                          f"(passes: {', '.join(all_passes())}, or all)")
    return {"verify_each": verify_each, "print_after": after, "printer": _echo_ir}


@main.command(short_help="Run a pass pipeline over IR text (like mlir-opt).")
@click.argument("file", type=click.Path(), required=False)
@click.option("-p", "--pipeline", default="", help="Passes, e.g. 'canonicalize,fold,dce'.")
@click.option("-o", "--output", callback=out_file, help="Write IR here "
              "(default stdout).")
@click.option("--list-passes", is_flag=True, help="List the registered passes and exit.")
@pipeline_options
def opt(file, pipeline, output, list_passes, print_after, verify_each, time_passes):
    """Run a pass pipeline over IR text, like mlir-opt / xdsl-opt.

    \b
    speccc opt model.ir -p 'canonicalize,fold{bind=T=5:P=3},dce,fuse'
    Pass options: NAME{key=value,key2=v1:v2} (lists are ':'-separated).
    """
    from speccc.passmanager import all_passes
    if list_passes:
        for name, cls in all_passes().items():
            click.echo(f"{name:14s} {cls.summary}")
        return
    if not file:
        raise SpecccError("opt: give an IR FILE (or --list-passes)")
    from speccc import driver
    text, pm = driver.opt_file(file, pipeline, **_pm_kwargs(print_after, verify_each))
    if time_passes:
        _print_timings(pm)
    if output:
        driver.write_text_atomic(output, text)
    else:
        sys.stdout.write(text)


def _parse_bind(values) -> dict[str, int]:
    out = {}
    for v in values:
        for item in v.split(","):
            if not item.strip():
                continue
            k, sep, n = item.partition("=")
            k, n = k.strip(), n.strip()
            if not sep or not k or not n.lstrip("-").isdigit() or len(n) > 12:
                raise SpecccError(f"--bind expects NAME=INT, got '{item}'")
            out[k] = int(n)
    from speccc.driver import check_bindings
    check_bindings(out)
    return out


def hw_options(fn):
    fn = click.option("--max-context", type=click.IntRange(0, 1 << 20), default=0, metavar="N",
                      help="KV tokens the PIM cache has room for (default: P+T).")(fn)
    fn = click.option("--hw", "hw", default=None, metavar="PRESET|FILE.toml",
                      help=f"Hardware description (default: {DEFAULT_HW}; "
                           "see `speccc hw list`).")(fn)
    return fn


@main.command("exec", short_help="Execute a model on the reference or the PIM emulator.")
@click.argument("model", type=click.Path())
@click.option("--inputs", "inputs_path", type=click.Path(), required=True,
              help=".npz with one array per ONNX graph input (by name); bf16 arrays as "
                   "`speccc inputs` writes them (uint16 bits + __speccc_dtypes__).")
@click.option("-o", "--output", callback=out_file, required=True,
              help=".npz written with one array per ONNX graph output (bf16 ones as "
                   "uint16 bits, named in __speccc_dtypes__).")
@click.option("--on", "backend", type=click.Choice(["reference", "emulator"]),
              default="reference", show_default=True,
              help="reference: numpy semantics; emulator: PIM ops through codegen and the "
                   "functional PIM emulator, the rest through the reference.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="fp32",
              show_default=True, help="With --on emulator: fp32 oracle, or the preset's "
                                      "16-bit formats (fp16; bf16 on aim-gddr6).")
@hw_options
@click.option("--time", "time_pim", is_flag=True,
              help="With --on emulator: also time every PIM listing (DRAM timing, energy; "
                   "off by default, values need no timing) and print a summary.")
@click.option("--bind", multiple=True, help="Bind symbolic dims, e.g. T=5,P=3 (else taken "
              "from the inputs).")
@click.option("-p", "--pipeline", default=None, help="Override the canonical pipeline.")
@pipeline_options
@progress_option
def exec_(model, inputs_path, output, backend, precision, hw, max_context, time_pim, bind,
          pipeline, print_after, verify_each, time_passes, progress):
    """Import MODEL (ONNX file or zoo name), run the canonical pipeline, execute it on
    given inputs.

    \b
    speccc exec m.onnx --inputs in.npz -o out.npz --on reference
    speccc exec m.onnx --inputs in.npz -o out.npz --on emulator --precision fp16 --hw aim-gddr6
    speccc exec m.onnx --inputs in.npz -o out.npz --on emulator --time   # + PIM timing
    """
    import numpy as np
    from speccc import driver
    from speccc.text import resolve_model
    if time_pim and backend != "emulator":
        raise SpecccError("--time needs --on emulator (it times the PIM listings)")
    timings = [] if time_pim else None
    with progress_bars(progress) as bars:
        passes = bars.add("exec: passes")
        outputs, pm = driver.exec_model(
            resolve_model(model), inputs_path, _parse_bind(bind), pipeline, backend=backend,
            hw=hw, precision=precision, max_context=max_context, timings=timings,
            on_pass=lambda i, n, name: bars.update(passes, completed=i, total=n,
                                                   description=f"exec: {name}"),
            on_pim_op=bars.callback("exec: PIM ops on the emulator")
            if backend == "emulator" else None,
            **_pm_kwargs(print_after, verify_each))
    if time_passes:
        _print_timings(pm)
    driver.save_npz_atomic(output, outputs)
    shapes = ", ".join(f"{k}{list(np.shape(v))}" for k, v in outputs.items())
    click.echo(f"wrote {output}: {shapes}")
    if timings is not None:
        _print_pim_timings(timings, hw or DEFAULT_HW)


def _print_pim_timings(timings: list, hw: str) -> None:
    """One row per op kind and phase (listing names are GRAPH.NNNN.OP.PHASE.pim)."""
    from rich.console import Console
    from rich.table import Table
    rows: dict = {}
    for name, r in timings:
        key = ".".join(name.split(".")[2:4]) or name
        acc = rows.setdefault(key, [0, 0, 0, 0.0, 0.0])
        for i, v in enumerate((1, r.commands, r.cycles, r.ns, r.energy_total_pj)):
            acc[i] += v
    table = Table(title=f"PIM timing on {hw} (phases run one after another, each from "
                        "closed banks)")
    for col in ("op.phase", "runs", "commands", "cycles", "µs", "µJ"):
        table.add_column(col, justify="left" if col == "op.phase" else "right")
    total = [0, 0, 0, 0.0, 0.0]
    for key, (n, cmds, cyc, ns, pj) in sorted(rows.items()):
        table.add_row(key, str(n), str(cmds), str(cyc), f"{ns / 1000:.2f}", f"{pj / 1e6:.3f}")
        total = [a + b for a, b in zip(total, (n, cmds, cyc, ns, pj))]
    n, cmds, cyc, ns, pj = total
    table.add_row("total", str(n), str(cmds), str(cyc), f"{ns / 1000:.2f}", f"{pj / 1e6:.3f}")
    Console().print(table)


@main.command(short_help="Compile: fuse, place, emit PIM/NPU programs, report.")
@click.argument("model", type=click.Path())
@click.option("-o", "--output", "outdir", callback=out_dir, default="out",
              show_default=True, help="Output directory (ir/, pim/, report.json).")
@click.option("--bind", multiple=True, help="Bind symbolic dims, e.g. T=1,P=128.")
@click.option("-p", "--pipeline", default=None,
              help="Pipeline (default: canonical + fuse; `place` is appended).")
@click.option("--shapes-only", is_flag=True, help="Never read weight bytes.")
@hw_options
@click.option("--partition", "partition", default=None,
              type=click.Choice(["mincut", "dp", "greedy", "specpim", "attacc", "all-npu",
                                 "all-pim"]),
              help="Choose devices with the partition pass (a policy or a published "
                   "mapping). Default: every op PIM can lower (GEMVs) on PIM.")
@click.option("--draft", "draft", type=click.Path(dir_okay=False), default=None,
              metavar="DRAFT",
              help="Also compile a draft model, ONNX file or zoo name (graph @draft next "
              "to @target).")
@click.option("--draft-channels", "draft_channels", type=click.IntRange(0, 4096), default=None,
              metavar="N",
              help="With --draft: the draft gets PIM channels [0,N), the target the rest "
                   "(SpecPIM's split; default: shared).")
@click.option("--schedule", type=click.Choice(["none", "serial", "overlap", "pipeinfer"]),
              default="serial", show_default=True,
              help="With --draft: the speculative schedule written to OUT/ir/module.ir "
                   "(overlap and pipeinfer need --draft-channels).")
@click.option("--gamma", type=int, default=4, show_default=True,
              help="With --draft: tokens drafted per verify in that schedule.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--print-pipeline", is_flag=True,
              help="Print the whole pipeline (a `speccc opt -p` string) and exit.")
@pipeline_options
@progress_option
def compile(model, outdir, bind, pipeline, shapes_only, hw, max_context, partition, draft,
            draft_channels, schedule, gamma, as_json, print_pipeline, print_after,
            verify_each, time_passes, progress):
    """Compile MODEL (ONNX file or zoo name): import, optimize, fuse into LLM ops, place
    weights and KV cache in PIM, lower PIM ops to listings timed by the emulator; write
    IR, listings, a report.

    \b
    speccc compile tiny.onnx --bind T=1,P=16 -o out            # out/ir, out/pim, report.json
    speccc compile 7b.onnx --bind T=1,P=1024 --hw aim-gddr6 --shapes-only
    speccc compile target.onnx --draft draft.onnx --draft-channels 4 --bind T=1,P=16 \\
        --hw aim-gddr6 -o out                                 # SpecPIM channel split
    speccc compile tiny.onnx --bind T=1,P=16 --print-pipeline  # the passes, for opt -p
    speccc run --module out/ir/module.ir --target target.onnx --draft draft.onnx
                       # runs the schedule compile wrote (draft, target, @schedule)
    speccc compile smollm2 --draft smollm2-int4 --bind T=1,P=16 -o out   # zoo GGUF names
    speccc compile llama2-7b --draft llama-68m --bind T=1,P=128 --hw aim-gddr6 -o out
    """
    from speccc import driver
    from speccc.text import resolve_model
    model, draft = resolve_model(model), resolve_model(draft)
    if print_pipeline:
        if draft_channels is not None and draft is None:
            raise SpecccError("--draft-channels needs a --draft model")
        pm, _ = driver.compile_pipeline(pipeline, _parse_bind(bind), hw=hw,
                                        max_context=max_context, partition=partition,
                                        draft_channels=draft_channels)
        click.echo(driver.pipeline_text(pm))
        return
    with progress_bars(progress) as bars:
        task = bars.add("compile", total=None)
        result, pm = driver.compile_model(
            model, outdir, _parse_bind(bind), pipeline, shapes_only, hw=hw,
            max_context=max_context, partition=partition, draft=draft,
            draft_channels=draft_channels, schedule=schedule, gamma=gamma,
            on_pass=lambda i, n, name: bars.update(task, completed=i, total=n,
                                                   description=f"compile: {name}"),
            **_pm_kwargs(print_after, verify_each))
    if time_passes:
        _print_timings(pm)
    for name, g in result["graphs"].items():       # layers whose attention/MLP did not fuse
        for w in g.get("fuse_warnings", []):
            click.echo(f"speccc: warning: @{name} {w}", err=True)
    if as_json:
        click.echo(dumps_json(result, indent=1, sort_keys=True))
        return
    graphs = result["graphs"]
    parts = [(f"{model} -> {outdir} on {result['hw']}", result)] if len(graphs) == 1 else [
        (f"@{name} ({_channels(result, name)}) on {result['hw']}", g)
        for name, g in graphs.items()]
    for title, part in parts:
        _summary_table(title, part)
        name = f"@{next(iter(graphs))}" if len(graphs) == 1 else title.split()[0]
        click.echo(f"{name} step, ops in sequence (no NPU/PIM overlap): "
                   f"{_si(part['serial_ns'] * 1e-9, 's')}")
    click.echo(f"{result['listings']} PIM listings in {outdir}/pim; report.json has every "
               "op (the runtime overlaps devices: `speccc run`)")


def _channels(result: dict, graph: str) -> str:
    """Which PIM channels a graph of a pair owns (compile --draft-channels N)."""
    n = result.get("draft_channels")
    if n is None:
        return "all PIM channels, shared"
    return f"PIM channels 0-{n - 1}" if graph == "draft" else f"PIM channels {n}-"


def _summary_table(title: str, part: dict) -> None:
    from rich.table import Table
    table = Table(title=title)
    for col in ("op", "dev", "n", "work", "in", "out", "time", "energy", "eff"):
        table.add_column(col, justify="left" if col in ("op", "dev") else "right",
                         no_wrap=col in ("dev", "n"))
    for row in part["summary"]:
        if row["device"] == "host" and not row["ns"]:
            continue
        eff = row.get("efficiency")
        table.add_row(row["op"], row["device"], str(row["count"]), _si(row["flops"], "FLOP"),
                      _si(row["bytes_in"], "B"), _si(row["bytes_out"], "B"),
                      _si(row["ns"] * 1e-9, "s"), _si(row["energy_pj"] * 1e-12, "J"),
                      f"{eff:.2g}" if eff else "-")
    for dev, t in part["totals"].items():
        if t["ns"]:
            table.add_row("total", dev, str(t["ops"]), "", _si(t["bytes_in"], "B"),
                          _si(t["bytes_out"], "B"), _si(t["ns"] * 1e-9, "s"),
                          _si(t["energy_pj"] * 1e-12, "J"), "")
    table.caption = ("in/out: bytes over the device's external interface; eff: the "
                     "roofline bound / the modeled time")
    console().print(table)


def _si(x: float, unit: str) -> str:
    """3 significant digits with an SI prefix: 0.000188 GFLOP reads 188 kFLOP."""
    if not x:
        return f"0 {unit}"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""),
                          (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"
