"""fuse: form LLM ops from core-op subgraphs, by a declarative pattern table.

Rewrites (stage 1) matmul/gemm with a 2-D weight (optionally transposed, plus a bias
add) into `linear`; (stage 2) RMSNorm spelled with pow/reduce_mean/sqrt/reciprocal into
`rmsnorm`, `layer_norm` over the last axis into `layernorm`, rotate-half rotary into
`rope`, softmax(q·kᵀ·scale masked)·v with repeated (GQA) kv heads into `attention`;
(stage 3) silu-gated MLPs over three linears into `gated_mlp`.
After: every formed op computes what its subgraph did (its reference semantics are
independent); a mask is dropped for `causal=true` only after evaluating it for several
(T, P) bindings and finding exactly the causal pattern, otherwise it stays an operand.
"""
from __future__ import annotations

import numpy as np

from speccc.passes._patterns import C, Op, Opt, Rule, V, W, apply_rules, scalar
from speccc.ir.interpreter import evaluate_slice
from speccc.ir.opdefs import constant_of
from speccc.passmanager import Pass, register_pass

# --- linear ----------------------------------------------------------------------------------

def _mk(graph, root, name, operands, attrs=None):
    return graph.create(name, operands, attrs or {}, loc=root.op.loc).result


def _linear(g, root, m):
    return _mk(g, root, "linear", [m["x"], m["w"]])


def _linear_t(g, root, m):
    return _mk(g, root, "linear", [m["x"], m["w"]], {"transpose_w": True})


def _linear_bias(g, root, m):
    lin = m["lin"].op
    b = m["b"]
    if tuple(b.type.shape) != (lin.operands[1].type.shape[0 if lin.attrs.get("transpose_w")
                                                             else 1],):
        return None
    return _mk(g, root, "linear", [lin.operands[0], lin.operands[1], b], dict(lin.attrs))


def _gemm(g, root, m):
    a = m.get("gemm").op.attrs
    if a.get("alpha", 1.0) != 1.0 or a.get("trans_a", 0) or m["x"].type.rank != 2:
        return None
    ops = [m["x"], m["w"]] + ([m["b"]] if "b" in m.captures else [])
    return _mk(g, root, "linear", ops, {"transpose_w": bool(a.get("trans_b", 0))})


TRANSPOSE_2D = Op("transpose", W("w"), attrs=lambda a: list(a["perm"]) == [1, 0])
LINEAR_RULES = [
    Rule("linear", Op("matmul", V("x"), W("w")), _linear),
    Rule("linear.transposed", Op("matmul", V("x"), TRANSPOSE_2D), _linear_t),
    Rule("linear.gemm", Op("gemm", V("x"), W("w"), name="gemm"), _gemm),
    Rule("linear.gemm_bias", Op("gemm", V("x"), W("w"), W("b", 1), name="gemm"), _gemm),
    Rule("linear.bias", Op("add", V("lin", lambda v: v.op is not None and v.op.name == "linear"
                                    and len(v.op.operands) == 2), W("b", 1)), _linear_bias),
]

# --- norms -----------------------------------------------------------------------------------


def _last_axis_mean(a) -> bool:
    return a.get("keepdims", 1) == 1


def _is_last_axis(m, key="axes", x="x"):
    axes = constant_of(m[key])
    return axes is not None and [int(v) for v in np.asarray(axes).reshape(-1)] in (
        [-1], [m[x].type.rank - 1])


def _shortest(a) -> float:
    """A scalar constant as the shortest float that round-trips in its own dtype."""
    a = np.asarray(a).reshape(-1)
    return float(str(a[0])) if a.dtype.kind == "f" else float(a[0])


def _rmsnorm(g, root, m):
    if not _is_last_axis(m) or tuple(m["w"].type.shape) != (m["x"].type.shape[-1],):
        return None
    eps = _shortest(m.const("eps"))
    out = _mk(g, root, "rmsnorm", [m["x"], m["w"]], {"eps": eps})
    if out.type.dtype != root.type.dtype:
        return None
    return out


MEAN_SQ = Op("reduce_mean", Op("pow", Opt("cast", V("x")), C("two", scalar(2.0))), V("axes"),
             attrs=_last_axis_mean)
INV_RMS = Op("reciprocal", Op("sqrt", Op("add", MEAN_SQ, C("eps", lambda a: a.size == 1))))
NORMED = Op("mul", Opt("cast", V("x")), INV_RMS)
NORM_RULES = [
    Rule("rmsnorm", Op("mul", W("w", 1), Opt("cast", NORMED)), _rmsnorm),
    Rule("rmsnorm.div", Op("mul", W("w", 1), Opt("cast", Op("div", Opt("cast", V("x")), Op(
        "sqrt", Op("add", MEAN_SQ, C("eps", lambda a: a.size == 1)))))), _rmsnorm),
    Rule("layernorm", Op("layer_norm", V("x"), W("w", 1), W("b", 1), name="ln",
                         attrs=lambda a: a.get("axis", -1) == -1),
         lambda g, r, m: _mk(g, r, "layernorm", [m["x"], m["w"], m["b"]],
                             {"eps": float(m["ln"].op.attrs["epsilon"])})),
]

# --- rope ------------------------------------------------------------------------------------


def _slice_of(m, key, lo_half: bool) -> bool:
    x, s = m["x"], m[key].op
    d = x.type.shape[-1]
    vals = [constant_of(v) for v in s.operands[1:]]
    if not isinstance(d, int) or any(v is None for v in vals):
        return False
    starts, ends, axes, steps = (np.asarray(v).reshape(-1) for v in vals)
    if len(axes) != 1 or int(axes[0]) % x.type.rank != x.type.rank - 1 or int(steps[0]) != 1:
        return False
    half = d // 2
    lo, hi = (0, half) if lo_half else (half, d)
    return int(starts[0]) == lo and min(int(ends[0]), d) == hi


def _rope(g, root, m):
    if not (_slice_of(m, "x1", True) and _slice_of(m, "x2", False)):
        return None
    axis = m["cat"].op.attrs["axis"]
    if axis % m["x"].type.rank != m["x"].type.rank - 1:
        return None
    return _mk(g, root, "rope", [m["x"], m["cos"], m["sin"]])


ROTATED = Op("concat", Op("neg", Op("slice", V("x"), V("a"), V("b"), V("c"), V("d"), name="x2")),
             Op("slice", V("x"), V("e"), V("f"), V("g"), V("h"), name="x1"), name="cat")
ROPE_RULES = [Rule("rope", Op("add", Op("mul", V("x"), V("cos")), Op("mul", ROTATED, V("sin"))),
                   _rope)]

# --- attention -------------------------------------------------------------------------------


def _repeat_kv(v):
    """The kv tensor behind a GQA head repeat (unsqueeze/expand/reshape), else v itself."""
    r = v.op
    if r is None or r.name != "reshape":
        return v
    e = r.operands[0].op
    if e is None or e.name != "expand":
        return v
    u = e.operands[0].op
    if u is None or u.name != "unsqueeze" or list(u.attrs["axes"]) != [2]:
        return v
    kv = u.operands[0]
    g, h = kv.type.shape[1], v.type.shape[1]
    if kv.type.rank != 4 or not isinstance(g, int) or not isinstance(h, int) or h % g:
        return v
    if v.type.shape[2:] != kv.type.shape[2:]:
        return v
    return kv


CAUSAL_PROBES = [(1, 0), (3, 2), (1, 4), (4, 0), (2, 3)]  # (T, P) bindings


def _causal(mask, fill) -> bool:
    """Does `mask` select exactly the causal pattern for every probe binding?"""
    for t, p in CAUSAL_PROBES:
        got = evaluate_slice(mask, {"T": t, "P": p})
        if got is None:
            return False
        want = np.arange(p + t)[None, :] <= (p + np.arange(t))[:, None]
        try:
            got = np.broadcast_to(got, got.shape[:-2] + want.shape)
        except ValueError:
            return False
        if fill is None:  # additive mask: 0 where allowed, very negative elsewhere
            got = got == 0 if np.all((got == 0) | (got < -1e4)) else None
            if got is None:
                return False
        if got.dtype != np.bool_ or not all(np.array_equal(s, want)
                                            for s in got.reshape(-1, *want.shape)):
            return False
    return True


def _very_negative(a) -> bool:
    return a.size == 1 and float(a.reshape(-1)[0]) <= -1e4


def _attention(g, root, m):
    q, k, v = m["q"], _repeat_kv(m["k"]), _repeat_kv(m["v"])
    if q.type.rank != 4 or k.type.rank != 4 or v.type.rank != 4:
        return None
    if k.type.shape[1] != v.type.shape[1]:  # only one of k, v had its heads repeated
        k, v = m["k"], m["v"]
        if k.type.shape[1] != v.type.shape[1]:
            return None
    scale = 1.0
    if "scale" in m.captures:
        s = _shortest(m.const("scale"))
        scale = 1.0 / s if m["scores"].op.name == "div" else s
    mask, fill = m.get("mask"), m.get("fill")
    attrs = {"scale": scale}
    operands = [q, k, v]
    if mask is not None:
        if _causal(mask, fill):
            attrs["causal"] = True
        else:  # a bool mask keeps scores where true; a float mask is added
            operands.append(mask)
    return _mk(g, root, "attention", operands, attrs)


QK = Op("matmul", V("q"), Op("transpose", V("k"), attrs=lambda a: list(a["perm"]) == [0, 1, 3, 2]))
SCALED = (Op(("mul", "div"), QK, C("scale", lambda a: a.size == 1), name="scores"), QK)
MASKED = [Op("where", V("mask"), s, C("fill", _very_negative)) for s in SCALED] + \
         [Op("add", s, V("mask")) for s in SCALED] + list(SCALED)
ATTENTION_RULES = [
    Rule("attention", Op("matmul", Op("softmax", body, attrs=lambda a: a.get("axis") in (-1, 3)),
                         V("v")), _attention)
    for body in MASKED
]

# --- gated MLP -------------------------------------------------------------------------------


def _gated(g, root, m):
    x, wg, wu, wd = m["x"], m["wg"], m["wu"], m["wd"]
    for lin in ("lg", "lu", "ld"):
        if len(m[lin].op.operands) != 2 or m[lin].op.attrs.get("transpose_w"):
            return None
    return _mk(g, root, "gated_mlp", [x, wg, wu, wd], {"activation": "silu"})


LG = Op("linear", V("x"), W("wg"), name="lg")
SILU = Op("mul", LG, Op("sigmoid", LG))
MLP_RULES = [Rule("gated_mlp", Op("linear", Op("mul", SILU, Op("linear", V("x"), W("wu"),
                                                                   name="lu")),
                                     W("wd"), name="ld"), _gated)]

STAGES = [LINEAR_RULES, NORM_RULES + ROPE_RULES + ATTENTION_RULES, MLP_RULES]
PATTERN_NAMES = sorted({r.name.split(".")[0] for s in STAGES for r in s})


@register_pass
class Fuse(Pass):
    name = "fuse"
    summary = "form LLM ops (linear, rmsnorm, layernorm, rope, attention, gated_mlp)"
    patterns: list = None  # subset of PATTERN_NAMES (':'-separated); default all

    def run_on_graph(self, graph) -> None:
        wanted = set(self.patterns or PATTERN_NAMES)
        unknown = wanted - set(PATTERN_NAMES)
        if unknown:
            from speccc.errors import SpecccError
            raise SpecccError(f"fuse: unknown pattern(s) {sorted(unknown)}; "
                              f"known: {', '.join(PATTERN_NAMES)}")
        self.counts: dict[str, int] = {}
        for stage in STAGES:
            rules = [r for r in stage if r.name.split(".")[0] in wanted]
            for k, n in apply_rules(graph, rules).items():
                self.counts[k] = self.counts.get(k, 0) + n
