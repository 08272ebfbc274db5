"""fuse rule tables for rotary embeddings and attention.

Attention is one pattern with alternatives for each exporter spelling:

    q        q | q*s_q | transpose(reshape(x*s_q))          (OPT scales before the head split)
    kᵀ       transpose(k, 0132) | reshape(transpose(reshape(k,[B*H,S,D]),(0,2,1)),[B,H,D,S])
             each optionally * s_k                           (sdpa splits sqrt(scale) over q, k)
    scores   q·kᵀ, optionally * s or / s
    masked   where(mask, scores, -big) | scores + mask | scores
    probs    softmax(-1), optionally where(isnan(p), 0, p)   (sdpa's fully-masked-row guard)
    out      probs · v   (k, v through a GQA head repeat, which is undone)

The folded scale is s_q * s_k * s. The mask is checked semantically: its backward slice is
evaluated for several (T, P) bindings, including ones past every constant the slice compares
positions with (so a sliding window or threshold is exercised); exactly causal gives
`causal = true`, causal within the last w keys gives `sliding_window = w`, anything else
(e.g. masks computed from position_ids values) stays an operand.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.interpreter import evaluate_slice
from speccc.ir.opdefs import constant_of
from speccc.ir.types import dim_eval, is_float_dtype
from speccc.passes._patterns import (
    C, Alt, Check, Op, Rule, V, make, same_shape, scalar, scalar_factor, shortest,
)

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
    return make(g, root, "rope", [m["x"], m["cos"], m["sin"]])


ROTATED = Op("concat", Op("neg", Op("slice", V("x"), V("a"), V("b"), V("c"), V("d"), name="x2")),
             Op("slice", V("x"), V("e"), V("f"), V("g"), V("h"), name="x1"), name="cat")
ROPE_RULES = [Rule("rope", Op("add", Op("mul", V("x"), V("cos")), Op("mul", ROTATED, V("sin"))),
                   _rope)]

# --- masks -----------------------------------------------------------------------------------

BASE_PROBES = [(1, 0), (3, 2), (1, 4), (4, 0), (2, 3)]  # (T, P) bindings
POSITION_OPS = {"add", "sub", "mul", "div", "greater", "less", "greater_or_equal",
                "less_or_equal", "equal", "min", "max"}
PROBE_BUDGET = 1 << 22  # mask elements evaluated per probe, at most


def _largest_constant(mask, max_ops: int = 200):
    """The largest |scalar constant| the mask's slice does arithmetic or comparisons with
    (a window size, a threshold), or None for a slice too big to look at."""
    big, seen, stack = 0.0, set(), [mask]
    while stack:
        op = stack.pop().op
        if op is None or id(op) in seen:
            continue
        seen.add(id(op))
        if len(seen) > max_ops:
            return None
        for x in op.operands:
            c = constant_of(x)
            if c is None:
                stack.append(x)
            elif op.name in POSITION_OPS and c.dtype != object and c.size == 1:
                big = max(big, abs(float(np.asarray(c).reshape(-1)[0])))
    return big


def is_stored(v) -> bool:
    return v.op is not None and v.op.name == "weight"


def stored_value(v):
    """The data of a stored tensor (a `weight` op: e.g. the causal mask a static-shape
    export folds to an initializer), or None (not stored, no data, or too big to check)."""
    if not is_stored(v) or v.op.graph is None or v.op.graph.module is None:
        return None
    store = v.op.graph.module.weights_of(v.op.graph.name)
    name = v.op.attrs["name"]
    if store is None or not store.has(name):
        return None
    shape = v.type.shape
    if not all(isinstance(d, int) for d in shape) or int(np.prod(shape)) > PROBE_BUDGET:
        return None
    return np.asarray(store.get(name))


def _allowed(t, s, window):
    """Query i at absolute position s - t + i sees keys <= its position (and > it - w)."""
    pos, key = (s - t + np.arange(t))[:, None], np.arange(s)[None, :]
    return (key <= pos) & ((key > pos - window) if window else True)


def _mask_window(mask, fill, q, k):
    """0 if `mask` selects exactly the causal pattern at every probe, w > 0 if it selects the
    causal pattern within a sliding window of w keys, None otherwise. `fill` is None for an
    additive mask (0 where allowed, very negative elsewhere), else the mask is bool.

    Probes: small bindings, plus (if the slice compares positions with a constant b) ones
    with more than 2b + 2 keys, so a window or threshold up to there shows; if such a
    probe would exceed PROBE_BUDGET elements, the mask is not classified."""
    stored = stored_value(mask)
    if is_stored(mask) and stored is None:
        return None                 # a stored mask without data: nothing to check
    big = 0 if stored is not None else _largest_constant(mask)
    if big is None or big > PROBE_BUDGET:
        return None
    b = int(big)
    probes = BASE_PROBES + ([(1, b + 2), (3, b + 1), (2, 2 * b + 3), (2 * b + 3, 0)]
                            if b >= 4 else [])
    seen = []
    for tp in probes:
        binding = {"T": tp[0], "P": tp[1]}
        t, s = (dim_eval(x.type.shape[2], binding) for x in (q, k))
        if not isinstance(t, int) or not isinstance(s, int) or t * s > PROBE_BUDGET:
            continue
        got = stored if stored is not None else evaluate_slice(mask, binding)
        if got is None or got.ndim < 2:
            return None
        try:
            got = np.broadcast_to(got, got.shape[:-2] + (t, s))
        except ValueError:
            return None
        if fill is None:  # additive mask: 0 where allowed, very negative elsewhere
            if not is_float_dtype(got.dtype) or not np.all((got == 0) | (got < -1e4)):
                return None
            got = got == 0
        if got.dtype != np.bool_:
            return None
        slices = got.reshape(-1, t, s)
        if not all(np.array_equal(x, slices[0]) for x in slices):
            return None
        seen.append((t, s, slices[0]))
    if not seen or (b >= 4 and max(s for _, s, _ in seen) <= 2 * b + 2):
        return None
    t, s, last = max(seen, key=lambda x: x[1])
    n = int(last[-1].sum())  # keys the last query sees
    window = 0 if n == s else n
    if all(np.array_equal(a, _allowed(t, s, window)) for t, s, a in seen):
        return window
    return None


# --- attention -------------------------------------------------------------------------------


def _repeat_kv(v):
    """The kv tensor behind a GQA head repeat (unsqueeze(2) / expand / reshape), else v."""
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
    ex = e.results[0].type.shape  # [B, G, h/g, S, D]: each kv head repeated h/g times
    if (tuple(ex) != tuple(kv.type.shape[:2]) + (h // g,) + tuple(kv.type.shape[2:])
            or tuple(v.type.shape) != (kv.type.shape[0], h) + tuple(kv.type.shape[2:])):
        return v
    return kv


def _f32(m, key):
    return np.float32(m.const(key).reshape(-1)[0]) if key in m.captures else np.float32(1)


def _scale(m) -> float:
    post = _f32(m, "scale")
    if "scale" in m.captures and m["scores"].op.name == "div":
        post = np.float32(1) / post
    s = float(_f32(m, "sq")) * float(_f32(m, "sk")) * float(post)
    return shortest(np.float32(s))


def _attention(g, root, m):
    k, v = _repeat_kv(m["k"]), _repeat_kv(m["v"])
    if m["k"].type.rank == 5:               # kᵀ flattened straight from the GQA expand
        k = _expanded_kv(m["k"])
        if k.type.shape[1] != v.type.shape[1]:
            return None
    elif k.type.shape[1] != v.type.shape[1]:  # only one of k, v had its heads repeated
        k, v = m["k"], m["v"]
    q = m["q"] if "q" in m.captures else None
    q_type = m["qt"].type if q is None else q.type
    if q_type.rank != 4 or k.type.rank != 4 or v.type.rank != 4:
        return None
    if k.type.shape[1] != v.type.shape[1] or not same_shape(m["qk"], m["probs"]):
        return None  # a mask may not broadcast the scores to a larger shape
    attrs = {"scale": _scale(m)}
    mask, fill = m.get("mask"), m.get("fill")
    window = None if mask is None else _mask_window(mask, fill, m["qk"], k)
    if window is not None:
        attrs["causal"] = True
        if window:
            attrs["sliding_window"] = window
    elif mask is not None and is_stored(mask):
        return None     # a stored (static-shape) mask fuses only when checked causal
    if "guard" in m.captures:
        attrs["nan_to_zero"] = True
    if q is None:  # q was scaled before its head split: split the unscaled value
        qr, qt = m["qr"].op, m["qt"].op
        q = g.create("reshape", [m["qx"], qr.operands[1]], dict(qr.attrs), loc=qr.loc).result
        q = g.create("transpose", [q], dict(qt.attrs), loc=qt.loc).result
    operands = [q, k, v] + ([mask] if mask is not None and window is None else [])
    return make(g, root, "attention", operands, attrs)


def _perm(*p):
    return lambda a: list(a["perm"]) == list(p)


def _kt_chain(value, m) -> bool:
    """reshape(transpose(reshape(k, [B*H, S, D]), (0, 2, 1)), [B, H, D, S]) is kᵀ; k may
    also be the [B, G, H/G, S, D] expand of a GQA head repeat (static-shape exports fold
    the repeat's reshape into the flatten)."""
    k, flat = m["k"], m["kflat"]
    if flat.type.rank != 3:
        return False
    if k.type.rank == 5:
        kv = _expanded_kv(k)
        if kv is None:
            return False
        b, g, r, s, d = k.type.shape
        h = g * r
    elif k.type.rank == 4:
        b, h, s, d = k.type.shape
    else:
        return False
    return tuple(flat.type.shape[1:]) == (s, d) and tuple(value.type.shape) == (b, h, d, s)


def _expanded_kv(e):
    """kv when `e` is expand(unsqueeze(kv, axes=[2])) to [B, G, r, S, D], else None."""
    if e.op is None or e.op.name != "expand" or e.type.rank != 5:
        return None
    u = e.op.operands[0].op
    if u is None or u.name != "unsqueeze" or list(u.attrs["axes"]) != [2]:
        return None
    kv = u.operands[0]
    if kv.type.rank != 4 or tuple(e.type.shape[:2]) + tuple(e.type.shape[3:]) != \
            tuple(kv.type.shape[:2]) + tuple(kv.type.shape[2:]):
        return None
    return kv


def _very_negative(a) -> bool:
    return a.size == 1 and float(a.reshape(-1)[0]) <= -1e4


def _scaled(inner, key):
    return Check(Op("mul", inner, C(key)), scalar_factor)


KT = Alt(Op("transpose", V("k"), attrs=_perm(0, 1, 3, 2)),
         Check(Op("reshape", Op("transpose", Op("reshape", V("k"), V("ks1"), name="kflat"),
                                attrs=_perm(0, 2, 1)), V("ks2")), _kt_chain))
Q_SPLIT = Op("transpose", Op("reshape", _scaled(V("qx"), "sq"), V("qs"), name="qr"),
             name="qt", attrs=_perm(0, 2, 1, 3))
QK = Op("matmul", Alt(_scaled(V("q"), "sq"), Q_SPLIT, V("q")), Alt(_scaled(KT, "sk"), KT),
        name="qk")
SCALED = Alt(Check(Op(("mul", "div"), QK, C("scale"), name="scores"), scalar_factor), QK)
MASKED = Alt(Op("where", V("mask"), SCALED, C("fill", _very_negative)),
             Op("add", SCALED, V("mask")), SCALED)
SOFTMAX = Op("softmax", MASKED, name="probs", attrs=lambda a: a.get("axis") in (-1, 3))
PROBS = Alt(Op("where", Op("isnan", SOFTMAX), C("zero", scalar(0.0)), V("probs"), name="guard"),
            SOFTMAX)
ATTENTION_RULES = [Rule("attention", Op("matmul", PROBS, V("v")), _attention)]
