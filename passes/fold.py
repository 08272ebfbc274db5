"""fold: evaluate ops whose operands are all compile-time values.

Rewrites: an op whose operands are `const`/`sym_dims` becomes a `const` (or a
`sym_dims` when its value is a symbolic shape vector); `shape` of a typed value folds
from the type alone. With `bind` (`T=5:P=3`) symbols are first substituted in every
type and `sym_dims`, so symbolic shape computations become constants.
After: no foldable op has only constant operands (up to MAX_FOLD_ELEMENTS).
"""
from speccc.ir.folding import (constant_or_symbolic, dim_text, is_symbolic, materialize,
                               shape_fold, sym_dims_value, try_fold)
from speccc.ir.types import dim_eval
from speccc.passmanager import Pass, register_pass


def parse_bindings(items) -> dict[str, int]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"binding '{item}' is not NAME=INT")
        k, v = item.split("=", 1)
        out[k.strip()] = int(v)
    return out


def bind_graph(graph, bindings: dict[str, int]) -> None:
    """Substitute symbols in argument/result types and in sym_dims vectors."""
    for a in graph.arguments:
        a.result.type = a.result.type.bind(bindings)
    for op in graph.ops():
        for r in op.results:
            r.type = r.type.bind(bindings)
        if op.name == "sym_dims":
            op.attrs["dims"] = [dim_text(dim_eval(d, bindings)) for d in sym_dims_value(op)]


@register_pass
class Fold(Pass):
    name = "fold"
    summary = "constant-fold ops and shape subgraphs (optionally binding symbols)"
    bind: list = None

    def run_on_graph(self, graph) -> None:
        if self.bind:
            bind_graph(graph, parse_bindings(self.bind))
        for op in graph.ops():
            if op.name == "sym_dims":
                value = sym_dims_value(op)
                folded = None if is_symbolic(value) else [value.astype("int64")]
            elif op.name in ("shape", "size"):
                folded = shape_fold(op)
            else:
                vals = [constant_or_symbolic(v) for v in op.operands]
                folded = try_fold(op.name, vals, op.attrs, [r.type for r in op.results])
            if folded is None:
                continue
            graph.rewrite(op, [materialize(graph, a, op.loc).result for a in folded])
        graph.remove_dead()
