"""fuse rule tables for the dense parts of a decoder: linear, norms, activations, MLPs.

Each table is a list of `Rule(name, pattern, build)`; `build` checks what a pattern cannot
spell (shapes, axes, constants) and returns the fused value or None.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import constant_of
from speccc.ir.types import DType
from speccc.passes._patterns import (
    C, Alt, Check, Op, Opt, Rule, V, W, make, same_shape, scalar, shortest,
)

# --- linear ----------------------------------------------------------------------------------


def _linear(g, root, m):
    return make(g, root, "linear", [m["x"], m["w"]])


def _linear_t(g, root, m):
    return make(g, root, "linear", [m["x"], m["w"]], {"transpose_w": True})


def _linear_bias(g, root, m):
    lin = m["lin"].op
    b = m["b"]
    if tuple(b.type.shape) != (lin.operands[1].type.shape[0 if lin.attrs.get("transpose_w")
                                                             else 1],):
        return None
    return make(g, root, "linear", [lin.operands[0], lin.operands[1], b], dict(lin.attrs))


def _gemm(g, root, m):
    a = m.get("gemm").op.attrs
    if a.get("alpha", 1.0) != 1.0 or a.get("trans_a", 0) or m["x"].type.rank != 2:
        return None
    if "b" in m.captures and a.get("beta", 1.0) != 1.0:
        return None
    ops = [m["x"], m["w"]] + ([m["b"]] if "b" in m.captures else [])
    return make(g, root, "linear", ops, {"transpose_w": True} if a.get("trans_b", 0) else {})


def _linear_flat(g, root, m):
    """reshape(linear(reshape(x, [M, K])), x.shape[:-1] + [N]) is linear(x) (gpt2 Conv1D)."""
    x, flat, lin = m["x"], m["flat"], m["lin"].op
    if flat.type.rank != 2 or flat.type.shape[-1] != x.type.shape[-1]:
        return None
    n = lin.results[0].type.shape[-1]
    if tuple(root.type.shape) != tuple(x.type.shape[:-1]) + (n,):
        return None
    return make(g, root, "linear", [x] + list(lin.operands[1:]), dict(lin.attrs))


TRANSPOSE_2D = Op("transpose", W("w"), attrs=lambda a: list(a["perm"]) == [1, 0])
FLAT = Op("reshape", V("x"), V("s1"), name="flat")
LINEAR_RULES = [
    Rule("linear", Op("matmul", V("x"), W("w")), _linear),
    Rule("linear.transposed", Op("matmul", V("x"), TRANSPOSE_2D), _linear_t),
    Rule("linear.gemm", Op("gemm", V("x"), W("w"), name="gemm"), _gemm),
    Rule("linear.gemm_bias", Op("gemm", V("x"), W("w"), W("b", 1), name="gemm"), _gemm),
    Rule("linear.bias", Op("add", V("lin", lambda v: v.op is not None and v.op.name == "linear"
                                    and len(v.op.operands) == 2), W("b", 1)), _linear_bias),
    Rule("linear.flatten", Op("reshape", Alt(Op("linear", FLAT, W("w"), name="lin"),
                                             Op("linear", FLAT, W("w"), W("b", 1), name="lin")),
                              V("s2")), _linear_flat),
]

# --- norms -----------------------------------------------------------------------------------


def _last_axis_mean(a) -> bool:
    return a.get("keepdims", 1) == 1


def _is_last_axis(m, key="axes", x="x"):
    axes = constant_of(m[key])
    return axes is not None and [int(v) for v in np.asarray(axes).reshape(-1)] in (
        [-1], [m[x].type.rank - 1])


def _rmsnorm(g, root, m):
    if not _is_last_axis(m) or tuple(m["w"].type.shape) != (m["x"].type.shape[-1],):
        return None
    eps = shortest(m.const("eps"))
    out = make(g, root, "rmsnorm", [m["x"], m["w"]], {"eps": eps})
    if out.type.dtype != root.type.dtype:
        return None
    return out


def _layernorm(g, root, m):
    """layer_norm over the last axis, statistics in f32 (stash_type 1), unused mean/1/std."""
    ln = m["ln"].op
    axis = ln.attrs.get("axis", -1)
    x = m["x"]
    if axis not in (-1, x.type.rank - 1) or ln.attrs.get("stash_type", DType.f32) is not DType.f32:
        return None
    if any(tuple(m[k].type.shape) != (x.type.shape[-1],) for k in ("w", "b") if k in m.captures):
        return None
    eps = float(str(np.float32(ln.attrs.get("epsilon", 1e-5))))  # as written in f32
    return make(g, root, "layernorm", [x, m["w"]] + ([m["b"]] if "b" in m.captures else []),
                {"eps": eps})


MEAN_SQ = Op("reduce_mean", Op("pow", Opt("cast", V("x")), C("two", scalar(2.0))), V("axes"),
             attrs=_last_axis_mean)
INV_RMS = Op("reciprocal", Op("sqrt", Op("add", MEAN_SQ, C("eps", lambda a: a.size == 1))))
NORMED = Op("mul", Opt("cast", V("x")), INV_RMS)
NORM_RULES = [
    Rule("rmsnorm", Op("mul", W("w", 1), Opt("cast", NORMED)), _rmsnorm),
    Rule("rmsnorm.div", Op("mul", W("w", 1), Opt("cast", Op("div", Opt("cast", V("x")), Op(
        "sqrt", Op("add", MEAN_SQ, C("eps", lambda a: a.size == 1)))))), _rmsnorm),
    Rule("layernorm", Alt(Op("layer_norm", V("x"), W("w", 1), W("b", 1), name="ln"),
                          Op("layer_norm", V("x"), W("w", 1), name="ln")), _layernorm),
]

# --- activations -----------------------------------------------------------------------------


def _gelu(approximate):
    def build(g, root, m):
        if m["x"].type.dtype not in (DType.f32, DType.f64) or not same_shape(root, m["x"]):
            return None  # the spelled-out form rounds each step in a narrow float
        return make(g, root, "gelu", [m["x"]], {"approximate": approximate})
    return build


def _near(value):
    return scalar(value, 1e-6)


HALF_X = Op("mul", V("x"), C("half", _near(0.5)))
# 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (gpt2 gelu_new, zoo gelu_tanh)
CUBIC = Op("add", V("x"), Op("mul", Op("pow", V("x"), C("three", _near(3.0))),
                             C("c", _near(0.044715))))
TANH = Op("tanh", Op("mul", CUBIC, C("k", _near(float(np.sqrt(2 / np.pi))))))
# 0.5 x (1 + erf(x / sqrt 2))
ERF = Op("erf", Alt(Op("mul", V("x"), C("k", _near(float(1 / np.sqrt(2))))),
                    Op("div", V("x"), C("k", _near(float(np.sqrt(2)))))))
ACT_RULES = [
    Rule("gelu.tanh", Op("mul", HALF_X, Op("add", TANH, C("one", _near(1.0)))), _gelu("tanh")),
    Rule("gelu.erf", Op("mul", HALF_X, Op("add", ERF, C("one", _near(1.0)))), _gelu("none")),
]

# --- gated MLP -------------------------------------------------------------------------------


def _plain(m, *keys):
    return all(len(m[k].op.operands) == 2 and not m[k].op.attrs.get("transpose_w") for k in keys)


def _gated(g, root, m):
    if not _plain(m, "lg", "lu", "ld"):
        return None
    return make(g, root, "gated_mlp", [m["x"], m["wg"], m["wu"], m["wd"]], {"activation": "silu"})


def _halves(value, m) -> bool:
    """A split of the last axis into two equal halves."""
    op = value.op
    x = op.operands[0]
    if len(op.results) != 2 or op.attrs.get("axis", 0) % x.type.rank != x.type.rank - 1:
        return False
    a, b = (r.type.shape[-1] for r in op.results)
    return isinstance(a, int) and a == b and a * 2 == x.type.shape[-1]


def _gated_fused(g, root, m):
    if not _plain(m, "lgu", "ld"):
        return None
    return make(g, root, "gated_mlp", [m["x"], m["wgu"], m["wd"]], {"activation": "silu"})


LG = Op("linear", V("x"), W("wg"), name="lg")
SILU = Op("mul", LG, Op("sigmoid", LG))
LGU = Op("linear", V("x"), W("wgu"), name="lgu")


def _half(i):  # result i of split(x @ Wgu) into equal halves (split sizes as input or not)
    return Check(Alt(Op("split", LGU, C(f"sizes{i}"), result=i),
                     Op("split", LGU, result=i)), _halves)


GATE = _half(0)
MLP_RULES = [
    Rule("gated_mlp", Op("linear", Op("mul", SILU, Op("linear", V("x"), W("wu"), name="lu")),
                         W("wd"), name="ld"), _gated),
    # Phi-3: one gate|up projection, split in halves (gate first)
    Rule("gated_mlp.fused_gate_up", Op("linear", Op("mul", Op("mul", GATE, Op("sigmoid", GATE)),
                                                    _half(1)), W("wd"), name="ld"), _gated_fused),
]
