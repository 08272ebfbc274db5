"""Converters for ONNX MatMul, Gemm, Einsum, the softmax family and RotaryEmbedding."""
from __future__ import annotations

import numpy as np

from speccc.frontend.registry import converter
from speccc.ir.types import Sym, dim_prod


@converter("MatMul", since=1)
def matmul(ctx):
    return ctx.emit("matmul", [ctx.input(0), ctx.input(1)])


@converter("Gemm", since=7)
def gemm(ctx):
    # Opset < 7 had a `broadcast` flag; from 7 C broadcasts unidirectionally, and from
    # 11 it is optional.
    ops = [ctx.input(0), ctx.input(1)] + ([ctx.input(2)] if ctx.input(2) is not None else [])
    return ctx.emit("gemm", ops, {
        "alpha": float(np.float32(ctx.attr("alpha", 1.0))),
        "beta": float(np.float32(ctx.attr("beta", 1.0))),
        "trans_a": bool(ctx.attr("transA", 0)), "trans_b": bool(ctx.attr("transB", 0))})


@converter("Einsum", since=12)
def einsum(ctx):
    return ctx.emit("einsum", list(ctx.inputs), {"equation": ctx.attr("equation")})


def _shape_const(ctx, dims):
    """A shape operand from dims that may be symbolic (folds to `sym_dims`)."""
    arr = np.array(list(dims), dtype=object)
    if not any(isinstance(d, Sym) for d in dims):
        arr = arr.astype(np.int64)
    return ctx.const(arr)


def _softmax_like(ir_name: str, coerce_2d: bool):
    def fn(ctx):
        x = ctx.input(0)
        rank = x.type.rank
        axis = int(ctx.attr("axis", 1 if coerce_2d else -1))
        if not coerce_2d or axis % max(rank, 1) == rank - 1:
            return ctx.emit(ir_name, [x], {"axis": axis})
        # Opset < 13: the op acts on x flattened to 2-D at `axis` (all trailing dims form
        # one row), so normalize over that row and restore the shape.
        axis %= max(rank, 1)
        shape = x.type.shape
        flat = ctx.emit1("reshape", [x, _shape_const(ctx, [dim_prod(shape[:axis]),
                                                          dim_prod(shape[axis:])])])
        y = ctx.emit1(ir_name, [flat], {"axis": 1})
        return ctx.emit("reshape", [y, _shape_const(ctx, shape)])
    return fn


for _onnx, _ir in {"Softmax": "softmax", "LogSoftmax": "log_softmax",
                   "Hardmax": "hardmax"}.items():
    converter(_onnx, since=1)(_softmax_like(_ir, coerce_2d=True))
    converter(_onnx, since=13)(_softmax_like(_ir, coerce_2d=False))


@converter("RotaryEmbedding", since=23)
def rotary_embedding(ctx):
    return ctx.emit("rotary_embedding", [v for v in ctx.inputs if v is not None], {
        "interleaved": bool(ctx.attr("interleaved", 0)),
        "rotary_dim": int(ctx.attr("rotary_embedding_dim", 0)),
        "num_heads": int(ctx.attr("num_heads", 0))})


def _const_scalar(ctx, i, what, default):
    if ctx.input(i) is None:
        return default
    v = ctx.require_const(i, what).reshape(-1)
    if v.size != 1:
        ctx.fail(f"{what} must be a scalar")
    return v[0].item()


@converter("Dropout", since=7)
def dropout(ctx):
    # Opset 7-11: ratio attribute, always inference. 12+: ratio and training_mode inputs.
    if ctx.opset >= 12:
        ratio = float(_const_scalar(ctx, 1, "ratio", 0.5))
        training = bool(_const_scalar(ctx, 2, "training_mode", False))
    else:
        ratio, training = float(ctx.attr("ratio", 0.5)), False
    want_mask = len(ctx.node.output) > 1 and ctx.node.output[1] != ""
    if not training and not want_mask:
        return [ctx.input(0)]
    return ctx.emit("dropout", [ctx.input(0)], {
        "ratio": float(np.float32(ratio)), "training": training,
        "seed": int(ctx.attr("seed", -1))})
