"""The IR verifier: the invariants every pass must keep.

Checks: the graph is acyclic; every op is in the op table with the right arity and
attribute schema; every operand is defined in this graph; declared result types equal
what the op table infers; an op's own `verify` hook holds (op table `extra`);
outputs are defined. Raises VerifyError naming the op.
"""
from __future__ import annotations

import networkx as nx

from speccc.errors import VerifyError
from speccc.ir.core import Graph, Module
from speccc.ir.opdefs import check_arity, check_attrs, infer_types, lookup

# Ops whose result type is declared, not inferred (their data lives elsewhere).
DECLARED_TYPE_OPS = {"weight"}


def verify_graph(g: Graph) -> None:
    if not nx.is_directed_acyclic_graph(g.nx):
        cycle = nx.find_cycle(g.nx)
        names = " -> ".join(getattr(u, "name", "arg") for u, *_ in cycle)
        raise VerifyError(f"graph @{g.name} has a cycle: {names}")
    for op in g.ops():
        od = lookup(op.name, op.where())
        check_arity(od, len(op.operands), op.where())
        check_attrs(od, op.attrs, op.where())
        if "verify" in od.extra:   # op-specific well-formedness (e.g. schedule programs)
            od.extra["verify"](op)
        for i, v in enumerate(op.operands):
            if v.graph is not g or not g.nx.has_node(v.producer):
                raise VerifyError(f"{op.name}: operand {i} is not defined in @{g.name}",
                                  location=op.where())
        if op.name in DECLARED_TYPE_OPS:
            continue
        inferred = infer_types(op.name, [v.type for v in op.operands], op.attrs,
                               list(op.operands), op.where())
        declared = [r.type for r in op.results]
        if inferred != declared:
            got = ", ".join(map(str, declared))
            want = ", ".join(map(str, inferred))
            raise VerifyError(f"{op.name}: result type {got} but operands give {want}",
                              location=op.where())
    for name, v in zip(g.output_names, g.outputs):
        if v.graph is not g or not g.nx.has_node(v.producer):
            raise VerifyError(f"output \"{name}\" of @{g.name} is not defined in the graph")
    if len(g.output_names) != len(g.outputs):
        raise VerifyError(f"@{g.name}: {len(g.outputs)} outputs but {len(g.output_names)} names")


def verify(m: Module) -> None:
    for g in m:
        verify_graph(g)
