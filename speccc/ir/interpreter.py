"""Reference interpreter: the op table's numpy semantics run in topological order.

It is the oracle for every lowering. Inputs are bound by argument name; symbolic dims
are bound from the input shapes (and checked against explicit bindings); each result is
checked against its declared type, so a wrong shape rule cannot pass silently.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from speccc.errors import SpecccError, VerifyError
from speccc.ir.core import Graph
from speccc.ir.folding import sym_dims_bound
from speccc.ir.opdefs import lookup
from speccc.ir.types import Sym, TensorType


def bind_inputs(g: Graph, inputs: Mapping[str, np.ndarray],
                bindings: Mapping[str, int] | None = None) -> dict[str, int]:
    """Check inputs against the signature; return the symbol bindings they imply."""
    env = dict(bindings or {})
    missing = [a.result.name for a in g.arguments if a.result.name not in inputs]
    if missing:
        raise SpecccError(f"missing input(s) for @{g.name}: {', '.join(missing)}")
    for a in g.arguments:
        v, t = inputs[a.result.name], a.result.type
        if np.asarray(v).dtype != t.dtype.numpy:
            raise SpecccError(f"input '{a.result.name}' has dtype {np.asarray(v).dtype}, "
                              f"expected {t.dtype.numpy} ({t})")
        shape = np.shape(v)
        if len(shape) != t.rank:
            raise SpecccError(f"input '{a.result.name}' has shape {list(shape)}, expected {t}")
        for d, n in zip(t.shape, shape):
            if isinstance(d, Sym) and len(d.terms) == 1 and d.terms[0][1] == 1 \
                    and len(d.terms[0][0]) == 1:
                s = d.terms[0][0][0]
                if env.setdefault(s, n) != n:
                    raise SpecccError(f"input '{a.result.name}' has {s}={n} but {s}="
                                      f"{env[s]} elsewhere (shape {list(shape)}, type {t})")
    for a in g.arguments:
        want = a.result.type.bind(env).shape
        if tuple(want) != tuple(np.shape(inputs[a.result.name])):
            raise SpecccError(f"input '{a.result.name}' has shape "
                              f"{list(np.shape(inputs[a.result.name]))}, expected "
                              f"{a.result.type.bind(env)}")
    return env


def run_graph(g: Graph, inputs: Mapping[str, np.ndarray],
              bindings: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    env = bind_inputs(g, inputs, bindings)
    vals: dict[int, np.ndarray] = {id(a.result): np.asarray(inputs[a.result.name])
                                   for a in g.arguments}
    ops = g.ops()
    remaining: dict[int, int] = {}
    for op in ops:
        for v in op.operands:
            remaining[id(v)] = remaining.get(id(v), 0) + 1
    keep = {id(v) for v in g.outputs}
    for op in ops:
        od = lookup(op.name, op.where())
        if op.name == "weight":
            store = g.module.weights if g.module else None
            name = op.attrs["name"]
            if store is None or not store.has(name):
                raise SpecccError(f"weight '{name}' has no data (shapes-only model?)",
                                  location=op.where())
            outs = [store.get(name)]
        elif op.name == "sym_dims":
            # A folded symbolic shape vector: its value follows from the input shapes.
            outs = [sym_dims_bound(op, env)]
        else:
            args = [vals[id(v)] for v in op.operands]
            outs = od.ref(args, od.full_attrs(op.attrs))
        if len(outs) != len(op.results):
            raise VerifyError(f"{op.name}: reference gave {len(outs)} results, "
                              f"expected {len(op.results)}", location=op.where())
        for r, o in zip(op.results, outs):
            o = np.asarray(o)
            _check_result(op, r.type, o, env)
            vals[id(r)] = o
        for v in op.operands:
            remaining[id(v)] -= 1
            if remaining[id(v)] == 0 and id(v) not in keep:
                vals.pop(id(v), None)
    return {name: vals[id(v)] for name, v in zip(g.output_names, g.outputs)}


def _check_result(op, t: TensorType, o: np.ndarray, env) -> None:
    bt = t.bind(env)
    ok_shape = len(bt.shape) == o.ndim and all(
        isinstance(d, Sym) or d == n for d, n in zip(bt.shape, o.shape))
    if not ok_shape or o.dtype != t.dtype.numpy:
        raise VerifyError(f"{op.name}: computed {o.dtype}{list(o.shape)} but type says {bt}",
                          location=op.where())


def evaluate_slice(value, bindings: Mapping[str, int], max_ops: int = 200):
    """Evaluate `value` from compile-time information alone, for given symbol bindings.

    Walks the backward slice: constants, `sym_dims` and `shape` (from the bound type)
    are known; graph inputs and weights are not, so a slice that reads data returns
    None. Used by fuse to check what a mask subgraph computes (e.g. causal) without
    matching every exporter's spelling of it.
    """
    from speccc.ir.folding import sym_dims_value
    from speccc.ir.types import dim_eval
    memo: dict[int, np.ndarray] = {}
    order: list = []  # post-order = topological order of the slice
    state: dict[int, bool] = {}
    stack = [(value, False)]
    while stack:
        v, expanded = stack.pop()
        op = v.op
        if op is None or op.name == "weight":
            return None
        if expanded:
            if not state.get(id(op)):
                state[id(op)] = True
                order.append(op)
            continue
        if id(op) in state:
            continue
        state[id(op)] = False
        if len(state) > max_ops:
            return None
        stack.append((v, True))
        if op.name not in ("shape", "size"):
            stack.extend((x, False) for x in op.operands if id(x.op) not in state)
    for op in order:
        if op.name == "shape":
            dims = [dim_eval(d, bindings) for d in op.operands[0].type.shape]
            if not all(isinstance(d, int) for d in dims):
                return None
            outs = [np.array(dims, np.int64)[slice(op.attrs.get("start", 0), op.attrs.get("end"))]]
        elif op.name == "sym_dims":
            dims_value = sym_dims_value(op)  # 0-d for a scalar dim
            vals = [dim_eval(d, bindings) for d in dims_value.reshape(-1)]
            if not all(isinstance(d, int) for d in vals):
                return None
            outs = [np.array(vals, np.int64).reshape(dims_value.shape)]
        else:
            od = lookup(op.name, op.where())
            try:
                with np.errstate(all="ignore"):
                    outs = od.ref([memo[id(x)] for x in op.operands], od.full_attrs(op.attrs))
            except KeyError:
                return None
        for r, o in zip(op.results, outs):
            memo[id(r)] = np.asarray(o)
    return memo.get(id(value))
