"""Constant folding shared by the frontend (fold while building) and the `fold` pass.

Compile-time values are numpy arrays. Shape vectors may hold symbolic dims: they are
object arrays of int/Sym carried by the `sym_dims` op, so Shape -> Gather -> Concat ->
Reshape folds to a static or symbolic target shape by running the *same* op-table
reference semantics on object arrays (numpy applies Sym's + and * elementwise). An op
whose semantics cannot run symbolically raises inside numpy and is simply not folded.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import Attr, Cost, constant_of, define, lookup, sym_dims_value
from speccc.ir.types import DType, Sym, TensorType

# Folding never materializes more than this many elements (weights are not folded).
MAX_FOLD_ELEMENTS = 1 << 16
# Ops never folded: their value is data the user gives or that lives in the weight store.
NOT_FOLDABLE = {"weight", "const", "sym_dims"}


def dim_text(d) -> str:
    return str(d) if isinstance(d, int) else d.expr()


def _sym_dims_infer(ctx):
    if ctx.attr("scalar"):
        if len(ctx.attr("dims")) != 1:
            ctx.fail("a scalar sym_dims holds exactly one dim")
        return [TensorType((), DType.i64)]
    return [TensorType((len(ctx.attr("dims")),), DType.i64)]


def _sym_dims_ref(ins, attrs):
    raise ValueError("sym_dims holds symbolic dims: bind the symbols and run 'fold' first")


# `scalar`: a 0-d value (Shape -> Gather(scalar index) gives the dim `T` itself).
define("sym_dims", 0, _sym_dims_infer, _sym_dims_ref,
       attrs={"dims": Attr("strs"), "scalar": Attr("bool", False)},
       cost=lambda c, o: Cost(0, 0, 0),
       doc="A 1-D i64 vector of dims, some symbolic (`P+T`), or with `scalar` one 0-d "
           "dim: the value of a folded shape computation. Becomes a `const` once its "
           "symbols are bound; the interpreter evaluates it from the input shapes.")


def sym_dims_bound(op, bindings) -> np.ndarray:
    """The i64 value of a `sym_dims` under symbol bindings (what the interpreter runs)."""
    from speccc.errors import SpecccError
    from speccc.ir.types import dim_eval
    value = sym_dims_value(op)
    out = np.array([dim_eval(d, bindings) for d in value.reshape(-1)], dtype=object)
    if is_symbolic(out):
        free = sorted({s for d in out if isinstance(d, Sym) for s in d.symbols})
        raise SpecccError(f"sym_dims: symbol(s) {', '.join(free)} not bound by the inputs",
                          location=op.where())
    return out.astype(np.int64).reshape(value.shape)


def is_symbolic(arr: np.ndarray) -> bool:
    return arr.dtype == object and any(isinstance(x, Sym) for x in arr.reshape(-1))


constant_or_symbolic = constant_of


def _normalize(arr: np.ndarray) -> np.ndarray:
    """Object arrays whose entries are all ints become plain int64 arrays."""
    if arr.dtype == object and not is_symbolic(arr):
        return arr.astype(np.int64)
    return arr


def try_fold(name: str, operand_values: list, attrs: dict, result_types) -> list | None:
    """Evaluate `name` on compile-time operand values; None when it cannot be folded."""
    if name in NOT_FOLDABLE or any(v is None for v in operand_values):
        return None
    if any(not t.is_static or int(np.prod(t.shape, dtype=np.int64)) > MAX_FOLD_ELEMENTS
           for t in result_types):
        return None
    od = lookup(name)
    symbolic = any(v.dtype == object for v in operand_values)
    if symbolic:
        # Refs cast results back to an operand's dtype (`add(a, b)` -> a.dtype): with
        # every integer operand an object array, int64 const + Sym stays symbolic.
        operand_values = [v.astype(object) if v.dtype.kind in "iu" else v
                          for v in operand_values]
    try:
        with np.errstate(all="ignore"):
            outs = od.ref(list(operand_values), od.full_attrs(attrs))
    except Exception:  # semantics that cannot run on these (symbolic) values: leave it
        return None
    outs = [_normalize(np.asarray(o)) for o in outs]
    for o, t in zip(outs, result_types):
        if is_symbolic(o):
            if o.ndim > 1 or t.dtype != DType.i64:
                return None
        elif o.dtype == object or (symbolic and o.dtype != t.dtype.numpy):
            return None
    return [o if is_symbolic(o) else o.astype(t.dtype.numpy) for o, t in zip(outs, result_types)]


def materialize(graph, array: np.ndarray, loc=None):
    """An op producing `array`: `sym_dims` for symbolic vectors, else `const`."""
    if is_symbolic(array):
        attrs = {"dims": [dim_text(d) for d in array.reshape(-1)]}
        if array.ndim == 0:
            attrs["scalar"] = True
        return graph.create("sym_dims", [], attrs, loc=loc)
    return graph.create("const", [], {"value": np.asarray(array, order="C")}, loc=loc)


def create_or_fold(graph, name: str, operands, attrs=None, loc=None):
    """Create op `name`, or a constant with its value when all operands are known."""
    op = graph.create(name, operands, attrs or {}, loc=loc)
    vals = [constant_or_symbolic(v) for v in operands]
    if op.name == "shape" or op.name == "size":
        vals = [np.zeros(0)]  # shape/size need only the operand's type
        folded = shape_fold(op)
    else:
        folded = try_fold(name, vals, op.attrs, [r.type for r in op.results])
    if folded is None:
        return op.results
    graph.erase_op(op)
    return [materialize(graph, a, loc).result for a in folded]


def shape_fold(op) -> list | None:
    t = op.operands[0].type
    if op.name == "size":
        return [_normalize(np.array(t.numel(), dtype=object))]
    start, end = op.attrs.get("start", 0), op.attrs.get("end")
    dims = np.array(list(t.shape), dtype=object)[slice(start, end)]
    return [_normalize(dims)]
