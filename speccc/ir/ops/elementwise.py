"""Constants, weights and elementwise ops, defined from tables of numpy functions."""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.ops._util import broadcast_dims, same_as
from speccc.ir.types import DType, TensorType

# --- sources -------------------------------------------------------------------------------


def _const_infer(ctx):
    v = ctx.attr("value")
    return [TensorType(tuple(v.shape), DType.from_numpy(v.dtype))]


define("const", 0, _const_infer, lambda ins, a: [a["value"]],
       attrs={"value": Attr("tensor")}, cost=lambda c, o: Cost(0, 0, 0),
       doc="A small inline constant (shape vectors, scalars).")


def _weight_infer(ctx):
    ctx.fail("weight: result type must be given (it names stored data)")


define("weight", 0, _weight_infer, None, attrs={"name": Attr("str")},
       cost=lambda c, o: Cost(0, 0, 0),
       doc="A named weight tensor stored out of line (module.weights_of(graph)), maybe absent "
           "(shapes-only). The interpreter reads it from the weight store.")

# --- unary ---------------------------------------------------------------------------------


def _erf(x):
    import scipy.special  # ~0.1 s to import: only when an erf runs
    return scipy.special.erf(x).astype(x.dtype, copy=False)


def _round_half_even(x):
    return np.round(x)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "reciprocal": lambda x: np.reciprocal(x), "tanh": np.tanh, "erf": _erf,
    "sigmoid": _sigmoid, "relu": lambda x: np.maximum(x, 0).astype(x.dtype),
    "cos": np.cos, "sin": np.sin, "tan": np.tan, "acos": np.arccos, "asin": np.arcsin,
    "atan": np.arctan, "cosh": np.cosh, "sinh": np.sinh, "acosh": np.arccosh,
    "asinh": np.arcsinh, "atanh": np.arctanh, "floor": np.floor, "ceil": np.ceil,
    "round": _round_half_even, "sign": np.sign, "identity": lambda x: x,
    "softplus": lambda x: np.log1p(np.exp(x)).astype(x.dtype),
    "softsign": lambda x: (x / (1 + np.abs(x))).astype(x.dtype),
}
LOGICAL_UNARY = {"not": np.logical_not, "bitwise_not": np.invert}
PREDICATES = {"isnan": np.isnan}


def _unary_lean(fn):
    return lambda ins, attrs: [np.asarray(fn(ins[0])).astype(ins[0].dtype, copy=False)]


def _unary_ref(fn):
    lean = _unary_lean(fn)

    def ref(ins, attrs):
        with np.errstate(all="ignore"):
            return lean(ins, attrs)
    return ref


for _name, _fn in {**UNARY, **LOGICAL_UNARY}.items():
    define(_name, 1, same_as(0), _unary_ref(_fn), doc=f"Elementwise {_name}.",
           lean_ref=_unary_lean(_fn))
for _name, _fn in PREDICATES.items():
    define(_name, 1, lambda c: [c.types[0].with_dtype(DType.bool)],
           lambda ins, a, fn=_fn: [fn(ins[0])], doc=f"Elementwise {_name} -> i1.")

# --- binary --------------------------------------------------------------------------------


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        # ONNX integer Div truncates toward zero (C semantics), numpy // floors.
        with np.errstate(divide="ignore"):
            return (np.trunc(a / b)).astype(a.dtype)
    return np.divide(a, b)


def _pow(a, b):
    with np.errstate(all="ignore"):
        return np.power(a.astype(np.float64) if a.dtype.kind == "f" else a,
                        b.astype(np.float64) if a.dtype.kind == "f" else b).astype(a.dtype)


ARITH = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _div, "pow": _pow}
COMPARE = {"equal": np.equal, "less": np.less, "greater": np.greater,
           "less_or_equal": np.less_equal, "greater_or_equal": np.greater_equal}
LOGICAL = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
BITWISE = {"bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
           "bitwise_xor": np.bitwise_xor}


def _binary_infer(result_dtype=None):
    def infer(ctx):
        a, b = ctx.types
        shape = broadcast_dims(ctx, [a.shape, b.shape])
        if result_dtype is None and a.dtype != b.dtype and ctx.name != "pow":
            ctx.fail(f"operand types differ: {a.dtype.value} vs {b.dtype.value}")
        return [TensorType(shape, result_dtype or a.dtype)]
    return infer


def _binary_lean(fn):
    def lean(ins, attrs):
        a, b = ins
        out = np.asarray(fn(a, b))
        return [out.astype(a.dtype, copy=False) if out.dtype != np.bool_ else out]
    return lean


def _binary_ref(fn):
    lean = _binary_lean(fn)

    def ref(ins, attrs):
        with np.errstate(all="ignore"):
            return lean(ins, attrs)
    return ref


for _name, _fn in {**ARITH, **LOGICAL, **BITWISE}.items():
    define(_name, 2, _binary_infer(), _binary_ref(_fn), doc=f"Broadcasting {_name}.",
           lean_ref=_binary_lean(_fn))
for _name, _fn in COMPARE.items():
    define(_name, 2, _binary_infer(DType.bool), lambda ins, a, fn=_fn: [fn(ins[0], ins[1])],
           doc=f"Broadcasting comparison {_name} -> i1.")


def _mod_ref(ins, attrs):
    a, b = ins
    with np.errstate(all="ignore"):
        out = np.fmod(a, b) if attrs["fmod"] else np.mod(a, b)
    return [out.astype(a.dtype)]


define("mod", 2, _binary_infer(), _mod_ref, attrs={"fmod": Attr("int", 0)},
       doc="Remainder: sign of the divisor (fmod=0) or of the dividend (fmod=1).")


def _where_infer(ctx):
    c, x, y = ctx.types
    if x.dtype != y.dtype:
        ctx.fail(f"branches differ in type: {x.dtype.value} vs {y.dtype.value}")
    return [TensorType(broadcast_dims(ctx, [c.shape, x.shape, y.shape]), x.dtype)]


define("where", 3, _where_infer, lambda ins, a: [np.where(ins[0], ins[1], ins[2])],
       doc="Select x where cond else y, broadcasting.")

# --- variadic ------------------------------------------------------------------------------

VARIADIC = {"max": np.maximum, "min": np.minimum, "sum": np.add}


def _variadic_infer(ctx):
    return [TensorType(broadcast_dims(ctx, [t.shape for t in ctx.types]), ctx.types[0].dtype)]


def _variadic_ref(fn):
    def ref(ins, attrs):
        out = ins[0]
        for x in ins[1:]:
            out = fn(out, x)
        return [np.asarray(out).astype(ins[0].dtype)]
    return ref


for _name, _fn in VARIADIC.items():
    define(_name, (1, None), _variadic_infer, _variadic_ref(_fn), doc=f"N-ary {_name}.")


def _mean_ref(ins, attrs):
    out = ins[0]
    for x in ins[1:]:
        out = out + x
    return [np.asarray(out / len(ins)).astype(ins[0].dtype)]


define("mean", (1, None), _variadic_infer, _mean_ref, doc="N-ary mean.")

# --- parametrised activations --------------------------------------------------------------


def _gelu_ref(ins, attrs):
    # f32 arithmetic for f32 and narrower inputs (as runtimes do), f64 for f64.
    x = ins[0].astype(np.float64 if ins[0].dtype == np.float64 else np.float32, copy=False)
    half = x.dtype.type(0.5)
    # Temporaries are updated in place (never x, which may be the input): the same
    # operations in the same order as half * x * (1 + f(x)).
    if attrs["approximate"] == "tanh":
        c, k = x.dtype.type(np.sqrt(2 / np.pi)), x.dtype.type(0.044715)
        inner = x * x
        inner *= x
        inner *= k
        inner += x
        inner *= c
        t = np.tanh(inner, out=inner)
    else:
        import scipy.special  # ~0.1 s to import: only when an erf runs
        t = x / x.dtype.type(np.sqrt(2))
        scipy.special.erf(t, out=t)
    t += 1
    y = half * x
    y *= t
    return [y.astype(ins[0].dtype, copy=False)]


define("gelu", 1, same_as(0), _gelu_ref, attrs={"approximate": Attr("str", "none")},
       doc="GELU, exact (erf) or tanh approximation.")


def _act(fn):
    return lambda ins, a: [np.asarray(fn(ins[0].astype(np.float64), a)).astype(ins[0].dtype)]


ACTIVATIONS = {
    "leaky_relu": (lambda x, a: np.where(x >= 0, x, a["alpha"] * x), {"alpha": 0.01}),
    "elu": (lambda x, a: np.where(x > 0, x, a["alpha"] * (np.exp(x) - 1)), {"alpha": 1.0}),
    "hard_sigmoid": (lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0, 1),
                     {"alpha": 0.2, "beta": 0.5}),
    "celu": (lambda x, a: np.maximum(0, x) + np.minimum(0, a["alpha"] * (np.exp(x / a["alpha"]) - 1)),
             {"alpha": 1.0}),
    "selu": (lambda x, a: a["gamma"] * np.where(x > 0, x, a["alpha"] * (np.exp(x) - 1)),
             {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}),
    "hard_swish": (lambda x, a: x * np.clip(x / 6 + 0.5, 0, 1), {}),
    "mish": (lambda x, a: x * np.tanh(np.log1p(np.exp(x))), {}),
    "thresholded_relu": (lambda x, a: np.where(x > a["alpha"], x, 0), {"alpha": 1.0}),
}
for _name, (_fn, _defaults) in ACTIVATIONS.items():
    define(_name, 1, same_as(0), _act(_fn),
           attrs={k: Attr("float", v) for k, v in _defaults.items()}, doc=f"{_name} activation.")


def _clip_ref(ins, attrs):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else None
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else None
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return [np.asarray(out).astype(x.dtype)]


define("clip", (1, 3), same_as(0), _clip_ref, doc="Clamp to [min, max] operands (optional).")

def _bit_shift_ref(ins, attrs):
    # Shifts by < 0 or >= the bit width are defined (ONNX 28): 0, or the sign for a
    # signed right shift; signed left shifts wrap like the unsigned bit pattern.
    a, b = np.broadcast_arrays(*ins)
    width = np.iinfo(a.dtype).bits
    valid = (b >= 0) & (b < width)
    bs = np.where(valid, b, 0)
    if attrs["direction"] == "right":
        out = np.right_shift(a, bs.astype(a.dtype))
        fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
    else:
        u = np.dtype(f"u{a.dtype.itemsize}")
        out = np.left_shift(a.view(u), bs.astype(u)).view(a.dtype)
        fill = 0
    return [np.where(valid, out, fill).astype(a.dtype)]


define("bit_shift", 2, _binary_infer(), _bit_shift_ref,
       attrs={"direction": Attr("str")}, doc="Broadcasting shift of integers, 'left' or "
                                              "'right' (arithmetic for signed types).")


def _prelu_infer(ctx):
    x, slope = ctx.types
    if broadcast_dims(ctx, [x.shape, slope.shape]) != tuple(x.shape):
        ctx.fail(f"slope {slope} does not broadcast to {x}")
    return [x]


define("prelu", 2, _prelu_infer,
       lambda ins, a: [np.where(ins[0] > 0, ins[0], ins[0] * ins[1]).astype(ins[0].dtype)],
       doc="x if x > 0 else slope * x (slope broadcasts to x).")


def _isinf_ref(ins, attrs):
    x = ins[0]
    pos = np.isposinf(x) if attrs["detect_positive"] else np.zeros(x.shape, bool)
    neg = np.isneginf(x) if attrs["detect_negative"] else np.zeros(x.shape, bool)
    return [pos | neg]


define("isinf", 1, lambda c: [c.types[0].with_dtype(DType.bool)], _isinf_ref,
       attrs={"detect_positive": Attr("bool", True), "detect_negative": Attr("bool", True)},
       doc="Elementwise test for +inf and/or -inf -> i1.")


def _gate(x, alpha):
    # x * sigmoid(alpha * x), the sigmoid rounded to x's type first (as ONNX).
    with np.errstate(over="ignore"):
        return x * (1 / (1 + np.exp(-alpha * x))).astype(x.dtype)


define("swish", 1, same_as(0), lambda ins, a: [_gate(ins[0], a["alpha"]).astype(ins[0].dtype)],
       attrs={"alpha": Attr("float", 1.0)}, doc="x * sigmoid(alpha * x).")


def _swiglu_infer(ctx):
    a, b = ctx.types
    if a != b:
        ctx.fail(f"operands must have the same type (no broadcasting): {a} vs {b}")
    return [a]


define("swiglu", 2, _swiglu_infer,
       lambda ins, a: [(_gate(ins[0], a["alpha"]) * ins[1]).astype(ins[0].dtype)],
       attrs={"alpha": Attr("float", 1.0)}, doc="swish(a, alpha) * b, same shapes.")


def _shrink_ref(ins, attrs):
    x, lambd, bias = ins[0], attrs["lambd"], attrs["bias"]
    return [np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0)).astype(x.dtype)]


define("shrink", 1, same_as(0), _shrink_ref,
       attrs={"lambd": Attr("float", 0.5), "bias": Attr("float", 0.0)},
       doc="x + bias below -lambd, x - bias above lambd, else 0.")

# --- casts ---------------------------------------------------------------------------------

# Casts to these saturate by default (ONNX `saturate=1`): out-of-range values and +-inf
# clamp to the largest finite value instead of becoming NaN/inf.
_SATURATING = (DType.f8e4m3fn, DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz)


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """float -> float8 E8M0 (a biased power-of-two exponent), rounding the mantissa
    away per `round_mode` (up / down / nearest-even), as the ONNX spec does on the bits."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.uint16)
    special = exp == 0xFF  # inf/nan -> the NaN encoding 0xFF
    if round_mode == "up":
        up = (bits & 0x7FFFFF) > 0
    elif round_mode == "nearest":
        guard, rest = (bits & 0x400000) > 0, (bits & 0x3FFFFF) > 0
        up = guard & (rest | (exp > 0))
    elif round_mode == "down":
        up = np.zeros(bits.shape, dtype=bool)
    else:
        raise ValueError(f"cast: unknown round_mode {round_mode!r}")
    up &= ~special
    if saturate:
        up &= exp != 0xFE  # never round the largest exponent up into NaN
    out = np.where(special, 0xFF, exp + up).astype(np.uint8)
    return out.view(DType.f8e8m0.numpy)


def _cast_ref(ins, attrs):
    import ml_dtypes  # imported where used: keeps start-up light
    to_t, x = attrs["to"], ins[0]
    to = to_t.numpy
    if to_t == DType.string:
        return [x.astype(np.str_).astype(object)]
    if x.dtype == object:
        if any(not isinstance(v, str) for v in x.reshape(-1)):
            if to_t != DType.i64:  # symbolic dims (folding) stay symbolic only as i64
                raise ValueError("cast of symbolic dims to a type other than i64")
            return [x.copy()]
        return [x.astype(np.float64).astype(to)]
    with np.errstate(all="ignore"):
        if to_t == DType.f8e8m0:
            return [_to_e8m0(x, bool(attrs["saturate"]), attrs["round_mode"])]
        if to_t in _SATURATING and attrs["saturate"] and x.dtype != np.bool_:
            info = ml_dtypes.finfo(to)
            # Widening first is exact (ints, bf16, narrow floats) and lets clip compare.
            src = x if x.dtype.kind == "f" else x.astype(np.float64)
            x = np.clip(src, float(info.min), float(info.max))
        return [x.astype(to)]


define("cast", 1, lambda c: [c.types[0].with_dtype(c.attr("to"))], _cast_ref,
       attrs={"to": Attr("dtype"), "saturate": Attr("int", 1),
              "round_mode": Attr("str", "up")},
       doc="Convert the element type. `saturate` (float8 targets) clamps out-of-range "
           "values to the largest finite value; `round_mode` applies to float8 E8M0.")
