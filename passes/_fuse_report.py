"""Why a decoder layer's attention or MLP did not fuse: one line per layer and part.

    fusion_warnings(graph)   # ["layer 1 attention: the mask is a stored constant ...", ...]

Run after fuse's rules. Layers are counted by attention sites in topological order (a
fused `attention`, or a `softmax` over the last axis left behind); an op belongs to the
layer of the last site before it (ops before the first site: layer 0). What is left
unfused, and the first reason found:

- attention: a softmax left: the pattern piece that does not match (probs · v, the
  scores q·kᵀ, kᵀ's spelling), a stored (static-shape) mask without data or not exactly
  causal, or a value inside the pattern also used elsewhere;
- MLP: a `sigmoid` left (SiLU gate of a gated MLP: which projection is missing or has a
  bias), or spelled-out GELU (`tanh`/`erf`/`pow`);
- linear: a `matmul`/`gemm` on a stored weight that did not become `linear`.

Attention that fused with its mask as an operand (a mask computed from input values) is
fused: PIM runs it, the mask is applied on the host side; no warning.
"""
from __future__ import annotations

from speccc.passes._fuse_rules_attention import (
    ATTENTION_RULES, KT, MASKED, PROBS, QK, _mask_window, is_stored, stored_value,
)
from speccc.passes._fuse_rules_dense import MLP_RULES
from speccc.passes._patterns import Match, self_contained

ATTENTION = ATTENTION_RULES[0].pattern
SPELLED_GELU = ("tanh", "erf", "pow")


def _matches(pattern, value) -> list:
    return list(pattern.match(value, Match()))


def _spelling(v, depth: int = 3) -> str:
    """The ops that compute v, outermost first: `reshape(transpose(reshape(...)))`."""
    op = v.op
    if op is None:
        return "an input"
    if depth == 0 or not op.operands or op.name in ("weight", "const"):
        return op.name
    return f"{op.name}({_spelling(op.operands[0], depth - 1)})"


def _users(v) -> list:
    return [u for u, _ in v.users]


def _softmax_sites(graph) -> list:
    return [op for op in graph.ops() if op.name == "attention" or (
        op.name == "softmax" and op.attrs.get("axis") in (-1, op.operands[0].type.rank - 1))]


def _mask_reason(m) -> str | None:
    mask, k = m.get("mask"), m["k"]
    if mask is None or not is_stored(mask):
        return None
    if stored_value(mask) is None:
        return (f"the mask is a stored constant {mask.type} without data (shapes-only?), so "
                "it cannot be checked causal")
    if _mask_window(mask, m.get("fill"), m["qk"], k) is None:
        return f"the mask is a stored constant {mask.type} that is not causal"
    return None


def attention_reason(softmax) -> str:
    probs = softmax.results[0]
    outs = [u for u in _users(probs) if u.name == "matmul"]
    for u in _users(probs):      # sdpa's where(isnan(p), 0, p) guard
        if u.name == "isnan":
            outs += [y for r in u.results for w in _users(r) if w.name == "where"
                     for x in w.results for y in _users(x) if y.name == "matmul"]
    scores = softmax.operands[0]
    if not _matches(MASKED, scores):
        qk = next((v for v in [scores, *(o for o in (scores.op.operands if scores.op else ()))]
                   if v.op is not None and v.op.name == "matmul"), None)
        if qk is None:
            return f"the scores are {_spelling(scores)}, not q·kᵀ (scaled, masked)"
        if not _matches(QK, qk) and not _matches(KT, qk.op.operands[1]):
            return f"kᵀ is spelled {_spelling(qk.op.operands[1], 4)}, which no rule knows"
        return f"the scores are {_spelling(scores)}: no scale/mask spelling matches"
    if not outs:
        where = ", ".join(sorted({u.name for u in _users(probs)})) or "nothing"
        return f"the probabilities feed {where}, not a matmul with v"
    for root in outs:
        found = _matches(ATTENTION, root.results[0])
        if not found:
            continue
        for m in found:
            reason = _mask_reason(m)
            if reason:
                return reason
        for m in found:
            if not self_contained(root.results[0], m):
                leak = next(op for op in m.internal for r in op.results
                            if r is not root.results[0] and any(
                                u not in m.internal for u in _users(r)))
                return f"{leak.name} inside the pattern is also used outside it"
        return "the pattern matched but the shapes do not (q, k, v ranks or heads)"
    if not _matches(PROBS, outs[0].operands[0]):
        return "the softmax is not over the last axis"
    return f"probs · v has v = {_spelling(outs[0].operands[1])}, which no rule knows"


def _linear_of(v):
    """The `linear` op computing v (through a gate|up split), else None."""
    op = v.op
    if op is not None and op.name == "split":
        op = op.operands[0].op
    return op if op is not None and op.name == "linear" else None


def _gate_reason(sigmoid) -> str:
    """Why SiLU(gate) · up -> down (fuse's MLP_RULES) did not become a gated_mlp."""
    gate = sigmoid.operands[0]
    if _linear_of(gate) is None:
        return f"the gate is {_spelling(gate)}, not a linear projection of stored weights"
    silu = [u for u in _users(sigmoid.results[0]) if u.name == "mul"]
    products = [p for s in silu for p in _users(s.results[0]) if p.name == "mul"]
    ups = [_linear_of(v) for p in products for v in p.operands if v is not silu[0].results[0]]
    downs = [d for p in products for d in _users(p.results[0]) if d.name == "linear"]
    for role, lin in (("gate", _linear_of(gate)), *(("up", u) for u in ups),
                      *(("down", d) for d in downs)):
        if lin is not None and len(lin.operands) != 2:
            return f"the {role} projection has a bias (gated_mlp has none)"
    if not products or not any(ups):
        return "SiLU(gate) is not multiplied by an up projection"
    if not downs:
        return "SiLU(gate) · up is not followed by a down projection of stored weights"
    for d in downs:
        for rule in MLP_RULES:
            for m in _matches(rule.pattern, d.results[0]):
                if not self_contained(d.results[0], m):
                    return "a value inside the gated MLP is also used outside it"
    return "gate and up read different inputs, or a projection is transposed"


def mlp_reason(op) -> str | None:
    if op.name == "sigmoid":
        return _gate_reason(op)
    if op.name in SPELLED_GELU:
        return f"GELU spelled with {op.name} did not fuse (not f32/f64, or another spelling)"
    if op.name in ("matmul", "gemm") and any(is_stored(v) for v in op.operands[1:]):
        w = next(v for v in op.operands[1:] if is_stored(v))
        return f"{op.name} on stored weight {w.type} did not become linear"
    return None


def fusion_warnings(graph) -> list[str]:
    sites = {id(op): i for i, op in enumerate(_softmax_sites(graph))}
    out: dict[tuple, str] = {}
    layer = 0
    for op in graph.ops():
        if id(op) in sites:
            layer = sites[id(op)]
            if op.name == "softmax":
                out.setdefault((layer, "attention"), attention_reason(op))
            continue
        reason = mlp_reason(op)
        if reason:
            part = "linear" if op.name in ("matmul", "gemm") else "MLP"
            out.setdefault((layer, part), reason)
    return [f"layer {n} {part}: {why}" for (n, part), why in sorted(out.items())]
