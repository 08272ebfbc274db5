"""Converters for ONNX reductions, ArgMax/ArgMin, CumSum/CumProd and TopK.

ONNX moved reduction axes from an attribute to an optional input (ReduceSum at opset
13, the others at 18) and added `noop_with_empty_axes`; all versions map onto one IR
form: `reduce_<kind>(x)` reduces everything, `reduce_<kind>(x, axes)` the given axes
(an empty list reduces none).
"""
from __future__ import annotations

import numpy as np

from speccc.frontend.registry import converter

REDUCE = {
    "ReduceSum": ("sum", 13), "ReduceMean": ("mean", 18), "ReduceMax": ("max", 18),
    "ReduceMin": ("min", 18), "ReduceProd": ("prod", 18), "ReduceL1": ("l1", 18),
    "ReduceL2": ("l2", 18), "ReduceLogSum": ("log_sum", 18),
    "ReduceLogSumExp": ("log_sum_exp", 18), "ReduceSumSquare": ("sum_square", 18),
}


def _emit_reduce(ctx, kind: str, axes, noop: bool):
    attrs = {"keepdims": bool(ctx.attr("keepdims", 1))}
    x = ctx.input(0)
    if axes is None or len(axes) == 0:
        if not noop:
            return ctx.emit(f"reduce_{kind}", [x], attrs)
        axes = []
    return ctx.emit(f"reduce_{kind}", [x, ctx.const(np.asarray(axes, dtype=np.int64))], attrs)


def _register(onnx_name: str, kind: str, input_since: int):
    @converter(onnx_name, since=1)
    def attr_axes(ctx):
        return _emit_reduce(ctx, kind, ctx.attr("axes"), noop=False)

    @converter(onnx_name, since=input_since)
    def input_axes(ctx):
        axes = None
        if ctx.input(1) is not None:
            axes = ctx.require_const(1, "axes").reshape(-1).tolist()
        return _emit_reduce(ctx, kind, axes, bool(ctx.attr("noop_with_empty_axes", 0)))


for _onnx, (_kind, _since) in REDUCE.items():
    _register(_onnx, _kind, _since)


def _arg(ir_name):
    def fn(ctx):
        return ctx.emit(ir_name, [ctx.input(0)], {
            "axis": int(ctx.attr("axis", 0)), "keepdims": bool(ctx.attr("keepdims", 1)),
            "select_last_index": bool(ctx.attr("select_last_index", 0))})
    return fn


converter("ArgMax", since=1)(_arg("argmax"))
converter("ArgMin", since=1)(_arg("argmin"))


def _scan(ir_name):
    def fn(ctx):
        axis = ctx.require_const(1, "axis").reshape(-1)
        if axis.size != 1:
            ctx.fail(f"axis must be a scalar, got {axis.tolist()}")
        return ctx.emit(ir_name, [ctx.input(0)], {
            "axis": int(axis[0]), "exclusive": bool(ctx.attr("exclusive", 0)),
            "reverse": bool(ctx.attr("reverse", 0))})
    return fn


converter("CumSum", since=11)(_scan("cumsum"))
converter("CumProd", since=26)(_scan("cumprod"))


@converter("TopK", since=1)
def topk(ctx):
    if ctx.opset >= 10:
        k = ctx.require_const(1, "k").reshape(-1)
        if k.size != 1:
            ctx.fail(f"k must hold one value, got {k.tolist()}")
        k = int(k[0])
    else:
        k = int(ctx.attr("k"))
    return ctx.emit("topk", [ctx.input(0)], {
        "k": k, "axis": int(ctx.attr("axis", -1)), "largest": bool(ctx.attr("largest", 1)),
        "sorted": bool(ctx.attr("sorted", 1))})
