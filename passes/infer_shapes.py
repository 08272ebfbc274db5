"""infer-shapes: recompute every result type from the op table, optionally binding symbols.

Rewrites: with `bind` (`T=5:P=3`), argument types and `sym_dims` vectors are specialized
first; then, in topological order, each op's result types are replaced by what the op
table infers from its (possibly new) operand types. Use it after editing argument types
in IR text or to specialize a symbolic graph.
After: every declared type equals the inferred one (the verifier's type check holds).
"""
from __future__ import annotations

from speccc.ir.folding import dim_text
from speccc.ir.opdefs import infer_types, sym_dims_value
from speccc.ir.types import dim_eval
from speccc.passmanager import Pass, register_pass


def parse_bindings(items) -> dict[str, int]:
    from speccc.errors import SpecccError
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not v.strip().lstrip("-").isdigit():
            raise SpecccError(f"binding '{item}' is not NAME=INT")
        out[k.strip()] = int(v)
    return out


def reinfer(graph, bindings: dict[str, int] | None = None) -> None:
    bindings = bindings or {}
    for a in graph.arguments:
        a.result.type = a.result.type.bind(bindings)
    for op in graph.ops():
        if op.name == "weight":
            continue
        if op.name == "sym_dims" and bindings:
            op.attrs["dims"] = [dim_text(dim_eval(d, bindings)) for d in sym_dims_value(op).reshape(-1)]
        types = infer_types(op.name, [v.type for v in op.operands], op.attrs,
                            list(op.operands), op.where())
        for r, t in zip(op.results, types):
            r.type = t


@register_pass
class InferShapes(Pass):
    name = "infer-shapes"
    summary = "recompute result types from the op table (optionally binding symbols)"
    bind: list = None

    def run_on_graph(self, graph) -> None:
        reinfer(graph, parse_bindings(self.bind))
