"""`speccc import-gguf`: a llama.cpp GGUF file -> a decoder ONNX speccc runs."""
from __future__ import annotations

import click

from speccc.cli.main import main

DTYPES = {"fp32": "float32", "fp16": "float16"}


@main.command("import-gguf", short_help="Convert a GGUF (llama) file to a decoder ONNX.")
@click.argument("file", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output .onnx file.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="fp32", show_default=True,
              help="Activations and float weights.")
@click.option("--quant", type=click.Choice(["dequant", "int8", "int4"]), default="dequant",
              show_default=True, help="dequant: float weights (GGUF blocks dequantized); "
              "int8/int4: linears re-quantized as com.microsoft.MatMulNBits.")
@click.option("--group", type=int, default=64, show_default=True,
              help="int8/int4: weights per quantization block (a power of two >= 16).")
def import_gguf(file, output, dtype, quant, group):
    """Convert a GGUF file (architecture llama; F32/F16/BF16/Q4_0..Q8_0/K-quant tensors,
    dequantized by the `gguf` package) to a LLaMA-style decoder ONNX: dynamic T and P,
    past/present KV, tied embeddings, Hugging Face parameter names.

    \b
    speccc import-gguf SmolLM2-135M-Instruct.Q4_1.gguf -o smollm2.onnx
    speccc import-gguf SmolLM2-135M-Instruct.Q4_1.gguf -o draft.onnx --quant int4 --group 64
    """
    from speccc import zoo
    from speccc.zoo.gguf import gguf_to_onnx, read_gguf
    model = gguf_to_onnx(read_gguf(file), dtype=DTYPES[dtype], quant=quant, group=group)
    zoo.save(model, output)
    click.echo(f"wrote {output} ({zoo.param_count(model):,} stored elements, {quant})")
