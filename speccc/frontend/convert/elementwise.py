"""Converters for ONNX elementwise ops onto the IR ops of speccc/ir/ops/elementwise.py."""
from __future__ import annotations

import numpy as np

from speccc.frontend.registry import converter, dtype_of, simple

UNARY = {
    "Neg": "neg", "Abs": "abs", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Reciprocal": "reciprocal", "Tanh": "tanh", "Erf": "erf", "Sigmoid": "sigmoid",
    "Relu": "relu", "Cos": "cos", "Sin": "sin", "Tan": "tan", "Acos": "acos",
    "Asin": "asin", "Atan": "atan", "Cosh": "cosh", "Sinh": "sinh", "Acosh": "acosh",
    "Asinh": "asinh", "Atanh": "atanh", "Floor": "floor", "Ceil": "ceil", "Round": "round",
    "Sign": "sign", "Identity": "identity", "Softplus": "softplus", "Softsign": "softsign",
    "IsNaN": "isnan", "HardSwish": "hard_swish", "Mish": "mish",
}
BINARY = {
    "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
    "Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_or_equal",
    "GreaterOrEqual": "greater_or_equal", "And": "and", "Or": "or", "Xor": "xor",
    "Where": "where", "Max": "max", "Min": "min", "Sum": "sum", "Mean": "mean",
}
# Opsets before these had `broadcast`/`consumed_inputs` attributes (legacy semantics).
simple(UNARY, since=6)
simple({"Not": "not"}, since=1)
simple(BINARY, since=7)
simple({"PRelu": "prelu"}, since=7)
simple({"BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
        "BitwiseNot": "bitwise_not"}, since=18)


def _float_attrs(*names_defaults):
    def attrs(ctx):
        return {k: float(np.float32(ctx.attr(k, d))) for k, d in names_defaults}
    return attrs


ACTIVATIONS = {
    "LeakyRelu": ("leaky_relu", (("alpha", 0.01),), 6),
    "Elu": ("elu", (("alpha", 1.0),), 6),
    "HardSigmoid": ("hard_sigmoid", (("alpha", 0.2), ("beta", 0.5)), 6),
    "Celu": ("celu", (("alpha", 1.0),), 12),
    "Selu": ("selu", (("alpha", 1.67326319217681884765625),
                      ("gamma", 1.05070102214813232421875)), 6),
    "Shrink": ("shrink", (("lambd", 0.5), ("bias", 0.0)), 9),
    "Swish": ("swish", (("alpha", 1.0),), 24),
    "SwiGLU": ("swiglu", (("alpha", 1.0),), 28),
    "ThresholdedRelu": ("thresholded_relu", (("alpha", 1.0),), 10),
}
for _onnx, (_ir, _defaults, _since) in ACTIVATIONS.items():
    simple({_onnx: _ir}, since=_since, attrs=_float_attrs(*_defaults))


@converter("Gelu", since=20)
def gelu(ctx):
    return ctx.emit("gelu", [ctx.input(0)], {"approximate": ctx.attr("approximate", "none")})


@converter("IsInf", since=10)
def isinf(ctx):
    return ctx.emit("isinf", [ctx.input(0)], {
        "detect_positive": bool(ctx.attr("detect_positive", 1)),
        "detect_negative": bool(ctx.attr("detect_negative", 1))})


@converter("BitShift", since=11)
def bit_shift(ctx):
    return ctx.emit("bit_shift", ctx.inputs, {"direction": ctx.attr("direction").lower()})


@converter("Mod", since=10)
def mod(ctx):
    return ctx.emit("mod", ctx.inputs, {"fmod": int(ctx.attr("fmod", 0))})


def _bound(ctx, value, dtype, lowest: bool):
    """A bound operand: the given value, or the dtype's lowest/highest value (-inf/inf
    for floats, so infinities pass through unclipped) when ONNX omits it."""
    if value is not None:
        return value
    np_dt = dtype.numpy
    if dtype.is_float:
        v = -np.inf if lowest else np.inf
    else:
        info = np.iinfo(np_dt)
        v = info.min if lowest else info.max
    return ctx.const(np.array(v).astype(np_dt))


@converter("Clip", since=6)
def clip_6(ctx):
    x = ctx.input(0)
    # Opset 6-10: bounds are float attributes, defaulting to float's numeric limits.
    f32 = np.finfo(np.float32)
    lo = np.array(ctx.attr("min", float(f32.min))).astype(x.type.dtype.numpy)
    hi = np.array(ctx.attr("max", float(f32.max))).astype(x.type.dtype.numpy)
    return ctx.emit("clip", [x, ctx.const(lo), ctx.const(hi)])


@converter("Clip", since=11)
def clip(ctx):
    x, lo, hi = ctx.input(0), ctx.input(1), ctx.input(2)
    if lo is None and hi is None:
        return ctx.emit("clip", [x])
    dt = x.type.dtype
    return ctx.emit("clip", [x, _bound(ctx, lo, dt, True), _bound(ctx, hi, dt, False)])


def _cast_attrs(ctx, to):
    # saturate (opset 19+) only matters for float8 targets, round_mode (24+) for E8M0;
    # they are set only when not the default so ordinary casts print as `{to = ...}`.
    attrs = {"to": to}
    if not ctx.attr("saturate", 1):
        attrs["saturate"] = 0
    if ctx.attr("round_mode", "up") != "up":
        attrs["round_mode"] = ctx.attr("round_mode")
    return attrs


@converter("Cast", since=6)
def cast(ctx):
    return ctx.emit("cast", [ctx.input(0)], _cast_attrs(ctx, dtype_of(ctx.attr("to"), ctx.loc)))


@converter("CastLike", since=15)
def cast_like(ctx):
    return ctx.emit("cast", [ctx.input(0)], _cast_attrs(ctx, ctx.input(1).type.dtype))
