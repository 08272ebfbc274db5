"""The IR verifier: the invariants every pass must keep.

Checks: the graph is acyclic; every op is in the op table with the right arity and
attribute schema; every operand is defined in this graph; declared result types equal
what the op table infers; an op's own `verify` hook holds (op table `extra`);
outputs are defined. Raises VerifyError naming the op.

The verifier runs after every pass, and most passes touch few ops, so the costly
per-op checks (attribute schema, type inference) are memoised: each op remembers the
signature it was verified with (its name, operands, result types, attribute values and
the constant values its inference reads) and is re-checked only when that changed.
Signatures hold the objects themselves and compare by identity, so any replaced
attribute or type counts as a change; attribute values are never edited in place.
"""
from __future__ import annotations

import networkx as nx

from speccc.errors import VerifyError
from speccc.ir.core import Graph, Module
from speccc.ir.opdefs import check_arity, check_attrs, infer_types, lookup

# Ops whose result type is declared, not inferred (their data lives elsewhere).
DECLARED_TYPE_OPS = {"weight"}


# Producers whose attributes are operand *values* to type inference (`constant_of`).
_VALUE_OPS = ("const", "sym_dims")


def _signature(op) -> tuple:
    """What the memoised checks of `op` depend on (see the module docstring)."""
    sig = [op.name, *op._operands, *(r.type for r in op.results), *op.attrs.values()]
    sig += op.attrs   # keys too: a renamed attribute is a change
    for v in op._operands:
        p = v.producer
        if getattr(p, "name", None) in _VALUE_OPS:
            sig += p.attrs.values()
    return tuple(sig)


def _unchanged(op, sig: tuple) -> bool:
    old = getattr(op, "_verified", None)
    return old is not None and len(old) == len(sig) and all(
        a is b for a, b in zip(old, sig))


def verify_graph(g: Graph) -> None:
    try:
        ops = g.ops()   # the cached order when nothing changed; sorting fails on a cycle
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g.nx)
        names = " -> ".join(getattr(u, "name", "arg") for u, *_ in cycle)
        raise VerifyError(f"graph @{g.name} has a cycle: {names}") from None
    for op in ops:
        od = lookup(op.name, op.where())
        sig = _signature(op)
        changed = not _unchanged(op, sig)
        if changed:
            check_arity(od, len(op.operands), op.where())
            check_attrs(od, op.attrs, op.where())
        if "verify" in od.extra:   # op-specific well-formedness (e.g. schedule programs)
            od.extra["verify"](op)
        for i, v in enumerate(op.operands):
            if v.graph is not g or not g.nx.has_node(v.producer):
                raise VerifyError(f"{op.name}: operand {i} is not defined in @{g.name}",
                                  location=op.where())
        if not changed:
            continue
        if op.name in DECLARED_TYPE_OPS:
            op._verified = sig
            continue
        inferred = infer_types(op.name, [v.type for v in op.operands], op.attrs,
                               list(op.operands), op.where())
        declared = [r.type for r in op.results]
        if inferred != declared:
            got = ", ".join(map(str, declared))
            want = ", ".join(map(str, inferred))
            raise VerifyError(f"{op.name}: result type {got} but operands give {want}",
                              location=op.where())
        op._verified = sig
    for name, v in zip(g.output_names, g.outputs):
        if v.graph is not g or not g.nx.has_node(v.producer):
            raise VerifyError(f"output \"{name}\" of @{g.name} is not defined in the graph")
    if len(g.output_names) != len(g.outputs):
        raise VerifyError(f"@{g.name}: {len(g.outputs)} outputs but {len(g.output_names)} names")


def verify(m: Module) -> None:
    for g in m:
        verify_graph(g)
