"""Converters for ONNX (De)QuantizeLinear, DynamicQuantizeLinear, MatMulInteger,
QLinearMatMul and ONNX Runtime's com.microsoft.MatMulNBits."""
from __future__ import annotations

import numpy as np

from speccc.frontend.registry import converter, dtype_of
from speccc.ir.types import DType


def _present(ctx, *idx):
    return [ctx.input(i) for i in idx if ctx.input(i) is not None]


@converter("DequantizeLinear", since=10)
def dequantize_linear(ctx):
    # output_dtype (opset 23) defaults to the scale's type.
    out = ctx.attr("output_dtype", 0)
    to = dtype_of(out, ctx.loc) if out else ctx.input(1).type.dtype
    return ctx.emit("dequantize_linear", _present(ctx, 0, 1, 2), {
        "axis": int(ctx.attr("axis", 1)), "block_size": int(ctx.attr("block_size", 0)),
        "to": to})


@converter("QuantizeLinear", since=10)
def quantize_linear(ctx):
    zp = ctx.input(2)
    out = ctx.attr("output_dtype", 0)
    to = zp.type.dtype if zp is not None else dtype_of(out, ctx.loc) if out else DType.u8
    x, scale = ctx.input(0), ctx.input(1)
    precision = ctx.attr("precision", 0)
    if precision:
        # The division x / scale happens in this type (opset 25).
        p = dtype_of(precision, ctx.loc)
        x = ctx.emit1("cast", [x], {"to": p})
        scale = ctx.emit1("cast", [scale], {"to": p})
    return ctx.emit("quantize_linear", [x, scale] + ([zp] if zp is not None else []), {
        "axis": int(ctx.attr("axis", 1)), "block_size": int(ctx.attr("block_size", 0)),
        "saturate": bool(ctx.attr("saturate", 1)), "to": to})


@converter("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx):
    return ctx.emit("dynamic_quantize_linear", [ctx.input(0)])


def _zero_point(ctx, i, like):
    # An omitted zero point is 0 of the quantized operand's type.
    v = ctx.input(i)
    return v if v is not None else ctx.const(np.zeros((), dtype=like.type.dtype.numpy))


@converter("MatMulInteger", since=10)
def matmul_integer(ctx):
    a, b = ctx.input(0), ctx.input(1)
    return ctx.emit("matmul_integer", [a, b, _zero_point(ctx, 2, a), _zero_point(ctx, 3, b)])


@converter("QLinearMatMul", since=10)
def qlinear_matmul(ctx):
    return ctx.emit("qlinear_matmul", [ctx.input(i) for i in range(8)])


@converter("MatMulNBits", since=1, domain="com.microsoft")
def matmul_nbits(ctx):
    a, b, scales = ctx.input(0), ctx.input(1), ctx.input(2)
    zp, g_idx, bias = ctx.input(3), ctx.input(4), ctx.input(5)
    k, n = int(ctx.attr("K")), int(ctx.attr("N"))
    bits, blk = int(ctx.attr("bits", 4)), int(ctx.attr("block_size"))
    if g_idx is not None:
        g = ctx.const_input(4)
        if g is not None and np.array_equal(g.reshape(-1), np.arange(k) // blk):
            g_idx = None  # the default grouping spelled out: drop it
    ops = [a, b, scales]
    if g_idx is not None and zp is None:
        # IR operands cannot be skipped: spell out the default zero point 2^(bits-1).
        nblocks = -(-k // blk)
        zp = ctx.const(np.full((n, nblocks), 1 << (bits - 1), dtype=scales.type.dtype.numpy))
    ops += [v for v in (zp, g_idx) if v is not None]
    y = ctx.emit1("matmul_nbits", ops, {"K": k, "N": n, "bits": bits, "block_size": blk,
                                        "accuracy_level": int(ctx.attr("accuracy_level", 0))})
    if bias is not None:
        y = ctx.emit1("add", [y, bias])
    return [y]
