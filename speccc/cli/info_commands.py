"""`speccc info` (what a model is) and `speccc inputs` (seeded example inputs)."""
from __future__ import annotations

import json

import click

from speccc.cli.main import main


@main.command(short_help="Describe a model: inputs, outputs, ops, KV cache, fusion.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(model, as_json):
    """Describe MODEL (.onnx or .ir) after import and the canonical pipeline: inputs and
    outputs with shapes and dtypes, op histogram, KV-cache pairs, parameters, and which
    layers' attention / MLP fused into LLM ops.

    \b
    speccc info tiny.onnx
    speccc info 7b.onnx --json
    """
    from speccc.introspect import describe
    d = describe(model)
    if as_json:
        click.echo(json.dumps(d, indent=1))
        return
    from rich.console import Console
    from rich.markup import escape
    con = Console(highlight=False)
    con.print(f"[bold]{escape(d['model'])}[/bold]: graph @{d['graph']}, "
              f"{d['parameters']:,} parameters, vocab {d['vocab']}, "
              f"context {d['max_context'] or 'unlimited'}")
    for kind in ("inputs", "outputs"):
        con.print(f"{kind}:")
        for v in d[kind]:
            con.print(f"  {escape(v['name'])}: {escape(v['type'])}")
    con.print("ops: " + ", ".join(f"{k} {n}" for k, n in d["ops"].items()))
    con.print(f"KV cache: {len(d['kv_cache'])} tensors" + (
        f" ({len(d['kv_cache']) // 2} layers)" if d["kv_cache"] else
        " (none: prefill-only model)"))
    for what, how in d["fused"].items():
        con.print(f"fused {what}: {how}")


@main.command(short_help="Write seeded example inputs of a model to an .npz.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help=".npz to write (one array per input, by ONNX name).")
@click.option("--bind", multiple=True, help="Symbolic dims, e.g. T=1,P=16 (T defaults to "
              "1, P to 0, other symbols to 1).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def inputs(model, output, bind, seed):
    """Write seeded example inputs for MODEL: token ids below the vocabulary, positions
    P..P+T-1, N(0,1) past keys/values and other floats. Feed them to `speccc exec`.
    bfloat16 arrays (zoo --dtype bf16), which .npz cannot name, are stored as their
    uint16 bits and listed in the member __speccc_dtypes__; exec reads them back as
    bf16 exactly (numpy alone: np.load(f)[name].view(ml_dtypes.bfloat16)).

    \b
    speccc inputs tiny.onnx --bind T=1,P=16 -o in.npz
    speccc exec tiny.onnx --inputs in.npz -o out.npz --on reference
    """
    from speccc.cli.core_commands import _parse_bind
    from speccc.driver import save_npz_atomic
    from speccc.introspect import example_feeds
    feeds = example_feeds(model, _parse_bind(bind), seed)
    save_npz_atomic(output, feeds)
    click.echo(f"wrote {output}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in
                                                 feeds.items()))
