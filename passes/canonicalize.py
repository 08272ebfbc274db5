"""canonicalize: one spelling per computation, so later patterns match one form.

Rewrites (a table of rules, see speccc/passes/_patterns.py):
- no-ops vanish: identity, cast to the same type, reshape/expand to the same shape,
  transpose by the identity permutation, mul by 1, add of 0, single-operand sum/max/min/mean;
- division of one by y becomes reciprocal(y) (how exporters spell rsqrt);
- variadic sum becomes a chain of binary add; variadic max/min/mean of > 2 operands
  become binary chains (mean divides once at the end).
After: none of the above forms remain, nor dead ops. Every rewrite is exact in IEEE arithmetic
(x*1 = x, x+0 = x up to the sign of zero, 1/y = reciprocal(y)), so results are unchanged.
"""
from __future__ import annotations

import numpy as np

from speccc.passes._patterns import C, Op, Rule, V, apply_rules
from speccc.passmanager import Pass, register_pass


def _same_type(g, root, m):
    return m["x"] if m["x"].type == root.type else None


def _const_is(value):
    return lambda a: a.dtype != object and a.size >= 1 and np.all(a == value)


def _identity_perm(a) -> bool:
    return list(a["perm"]) == list(range(len(a["perm"])))


def _recip(g, root, m):
    return g.create("reciprocal", [m["y"]], loc=root.op.loc).result if \
        m["y"].type == root.type else None


def _chain(binary: str):
    def build(g, root, m):
        op = root.op
        if len(op.operands) < 2 or (binary != "add" and len(op.operands) == 2):
            return None
        acc = op.operands[0]
        for v in op.operands[1:]:
            acc = g.create(binary, [acc, v], loc=op.loc).result
        return acc if acc.type == root.type else None
    return build


def _mean_chain(g, root, m):
    op = root.op
    if len(op.operands) < 3:
        return None
    acc = op.operands[0]
    for v in op.operands[1:]:
        acc = g.create("add", [acc, v], loc=op.loc).result
    n = g.create("const", [], {"value": np.array(len(op.operands), root.type.dtype.numpy)},
                 loc=op.loc).result
    out = g.create("div", [acc, n], loc=op.loc).result
    return out if out.type == root.type else None


class _Any(V):
    """Matches any value produced by an op of the given name (operands unconstrained)."""

    def __init__(self, op_name: str):
        super().__init__("root", lambda v, n=op_name: v.op is not None and v.op.name == n)


RULES = [
    Rule("identity", Op("identity", V("x")), _same_type),
    Rule("noop-cast", Op("cast", V("x")), _same_type),
    Rule("noop-reshape", Op("reshape", V("x"), V("s")), _same_type),
    Rule("noop-expand", Op("expand", V("x"), V("s")), _same_type),
    Rule("noop-transpose", Op("transpose", V("x"), attrs=_identity_perm), _same_type),
    Rule("mul-one", Op("mul", V("x"), C("one", _const_is(1))), _same_type),
    Rule("add-zero", Op("add", V("x"), C("zero", _const_is(0))), _same_type),
    Rule("single-operand", Op(("sum", "max", "min", "mean"), V("x")), _same_type),
    Rule("one-over", Op("div", C("one", _const_is(1)), V("y")), _recip),
    Rule("sum-chain", _Any("sum"), _chain("add")),
    Rule("max-chain", _Any("max"), _chain("max")),
    Rule("min-chain", _Any("min"), _chain("min")),
    Rule("mean-chain", _Any("mean"), _mean_chain),
]


@register_pass
class Canonicalize(Pass):
    name = "canonicalize"
    summary = "one spelling per computation: drop no-ops, rsqrt forms, binary chains"

    def run_on_graph(self, graph) -> None:
        apply_rules(graph, RULES)
        graph.remove_dead()  # constants only the removed forms used

