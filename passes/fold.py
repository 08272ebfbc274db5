"""fold: evaluate ops whose operands are all compile-time values.

Rewrites: an op whose operands are `const`/`sym_dims` becomes a `const` (or a
`sym_dims` when its value is a symbolic shape vector); `shape` of a typed value folds
from the type alone. With `bind` (`T=5:P=3`) symbols are first substituted in every
type and `sym_dims`, so symbolic shape computations become constants.
After: no foldable op has only constant operands (up to MAX_FOLD_ELEMENTS).
"""
from speccc.ir.folding import (constant_or_symbolic, is_symbolic, materialize, shape_fold,
                               try_fold)
from speccc.ir.opdefs import sym_dims_value
from speccc.passes.infer_shapes import parse_bindings, reinfer
from speccc.passmanager import Pass, register_pass


@register_pass
class Fold(Pass):
    name = "fold"
    summary = "constant-fold ops and shape subgraphs (optionally binding symbols)"
    bind: list = None

    def run_on_graph(self, graph) -> None:
        if self.bind:
            reinfer(graph, parse_bindings(self.bind))
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
