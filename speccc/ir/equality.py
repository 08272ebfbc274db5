"""Structural equality of graphs: same ops in the same dataflow, types and attributes.

Independent of the printer (so round-trip tests do not compare the printer with
itself): ops are matched by walking both graphs in topological order and mapping values.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.core import Graph, Module


def _attr_equal(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_attr_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def graphs_equal(g1: Graph, g2: Graph) -> bool:
    if g1.name != g2.name or len(g1.arguments) != len(g2.arguments):
        return False
    if g1.output_names != g2.output_names or set(g1.attrs) != set(g2.attrs):
        return False
    if not all(_attr_equal(g1.attrs[k], g2.attrs[k]) for k in g1.attrs):
        return False
    vmap: dict[int, object] = {}
    for a1, a2 in zip(g1.arguments, g2.arguments):
        if a1.result.name != a2.result.name or a1.result.type != a2.result.type:
            return False
        vmap[id(a1.result)] = a2.result
    ops1, ops2 = g1.ops(), g2.ops()
    if len(ops1) != len(ops2):
        return False
    for o1, o2 in zip(ops1, ops2):
        if o1.name != o2.name or len(o1.operands) != len(o2.operands):
            return False
        if set(o1.attrs) != set(o2.attrs) or not all(_attr_equal(o1.attrs[k], o2.attrs[k])
                                                     for k in o1.attrs):
            return False
        if any(vmap.get(id(v1)) is not v2 for v1, v2 in zip(o1.operands, o2.operands)):
            return False
        if [r.type for r in o1.results] != [r.type for r in o2.results]:
            return False
        for r1, r2 in zip(o1.results, o2.results):
            vmap[id(r1)] = r2
    return all(vmap.get(id(v1)) is v2 for v1, v2 in zip(g1.outputs, g2.outputs))


def modules_equal(m1: Module, m2: Module) -> bool:
    return list(m1.graphs) == list(m2.graphs) and all(
        graphs_equal(m1.graphs[k], m2.graphs[k]) for k in m1.graphs)
