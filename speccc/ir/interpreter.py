"""Reference interpreter: the op table's numpy semantics run in topological order.

It is the oracle for every lowering. Inputs are bound by argument name; symbolic dims
are bound from the input shapes (and checked against explicit bindings); each result is
checked against its declared type, so a wrong shape rule cannot pass silently.
"""
from __future__ import annotations

import operator
from typing import Mapping

import numpy as np

from speccc.errors import SpecccError, VerifyError
from speccc.ir.core import Graph
from speccc.ir.folding import sym_dims_bound
from speccc.ir.opdefs import lookup, sym_dims_value
from speccc.ir.straightline import StraightLineProgram
from speccc.ir.types import Sym


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


SOURCE_OPS = {"const", "weight"}


class Plan:
    """A graph compiled for repeated execution, like an inference session.

    Topological order, op-table entries, attributes, weights and value slots are
    resolved once; `run` then only calls the reference semantics. Every result is
    checked against its declared type on the first run with each set of input shapes
    (and dtypes); later runs with the same shapes re-check only results whose declared
    shape the inputs leave open, since the rest cannot change. Input dtypes and shapes
    are checked every run (a repeated shape signature reuses its symbol bindings).

    `overrides` maps ops of `g` to replacement semantics `fn(inputs, attrs) -> outputs`
    (same contract as an op's reference): how `exec --on emulator` runs PIM ops through
    codegen + the emulator and everything else through the op table.

    `prepare` (default on): from the second run with a shape signature on, ops whose
    table entry has a `prepare` hook run a form specialised once for this graph (e.g.
    a compiled norm), and a signature whose results need no re-check runs as one
    generated straight-line function (straightline.py) instead of the step loop. Both
    keep the reference's bits; `prepare=False` keeps the plain per-op loop, which
    tests/test_interpreter_prepared.py compares against bit for bit.
    """

    def __init__(self, g: Graph, overrides: Mapping | None = None, prepare: bool = True):
        self.graph = g
        self._overrides = dict(overrides or {})
        self._prepare = prepare
        self._prepared_refs: list | None = None
        self._straight_line: StraightLineProgram | None = None
        ops = g.ops()
        slot: dict[int, int] = {}
        for a in g.arguments:
            slot[id(a.result)] = len(slot)
        for op in ops:
            for r in op.results:
                slot[id(r)] = len(slot)
        self.nslots = len(slot)
        self._slot = slot
        self.args = [(a.result.name, slot[id(a.result)]) for a in g.arguments]
        self.outputs = [(name, slot[id(v)]) for name, v in zip(g.output_names, g.outputs)]
        last_use: dict[int, int] = {}
        for i, op in enumerate(ops):
            for v in op.operands:
                last_use[slot[id(v)]] = i
        keep = {s for _, s in self.outputs}
        self.steps = []
        self._shape_cache: dict = {}
        # Constants and weights are the same every run: computed once into a template.
        self._sources = [op for op in ops if op.name in SOURCE_OPS]
        self._template: list | None = None
        for i, op in enumerate(ops):
            if op.name in SOURCE_OPS:
                continue
            od = lookup(op.name, op.where())
            free = tuple(sorted({slot[id(v)] for v in op.operands
                                 if last_use[slot[id(v)]] == i and slot[id(v)] not in keep}))
            types = [r.type for r in op.results]
            static = [tuple(t.shape) if t.is_static else None for t in types]
            dtypes = [t.dtype.numpy for t in types]
            self.steps.append((op, self._ref_for(op, od), od.full_attrs(op.attrs),
                               [slot[id(v)] for v in op.operands],
                               [slot[id(r)] for r in op.results], types, static, free,
                               dtypes))
        self._env: dict = {}
        self._arg_dtypes = [(a.result.name, a.result.type.dtype.numpy) for a in g.arguments]
        self._bound: dict = {}      # input shapes -> (symbol bindings, shapes, run program)

    def _ref_for(self, op, od):
        """The step's semantics; symbolic shape vectors resolve from the run's bindings."""
        if op in self._overrides:
            return self._overrides[op]
        if op.name == "sym_dims":
            # A folded symbolic shape vector: its value follows from the input shapes.
            return lambda ins, attrs: [sym_dims_bound(op, self._env)]
        bind = od.extra.get("bind")
        if bind is not None:
            consts = [v.op.attrs["value"] if v.op is not None and v.op.name == "const"
                      else None for v in op.operands]
            bound = bind(od.full_attrs(op.attrs), consts, [v.type for v in op.operands])
            if bound is not None:
                return bound
        # run() ignores floating-point errors once for every step (as the refs do each)
        return od.extra.get("lean_ref", od.ref)

    def _program_refs(self) -> list:
        """Per step the semantics a run program calls: the op's `prepare` hook's form
        (given the constant and weight operands' values) where it offers one, else the
        step's plain reference. Built once, on the first program."""
        if self._prepared_refs is None:
            refs = [step[1] for step in self.steps]
            if self._prepare:
                values = self._sources_template()
                for i, (op, _, attrs, ins, *_rest) in enumerate(self.steps):
                    hook = lookup(op.name).extra.get("prepare")
                    if hook is None or op in self._overrides:
                        continue
                    prepared = hook(attrs, [values[j] for j in ins],
                                    [v.type for v in op.operands])
                    if prepared is not None:
                        refs[i] = prepared
            self._prepared_refs = refs
        return self._prepared_refs

    def _sources_template(self) -> list:
        if self._template is None:
            template: list = [None] * self.nslots
            for op in self._sources:
                r = op.result
                value = _weight(self.graph, op) if op.name == "weight" else op.attrs["value"]
                if value.dtype != r.type.dtype.numpy or value.shape != tuple(r.type.shape):
                    raise VerifyError(f"{op.name}: value {value.dtype}{list(value.shape)} but "
                                      f"type says {r.type}", location=op.where())
                template[self._slot[id(r)]] = value
            self._template = template
        return self._template

    def _expected_shapes(self, env: dict) -> list:
        """Result shapes per step for these symbol values (cached per binding)."""
        key = tuple(sorted(env.items()))
        if key not in self._shape_cache:
            self._shape_cache[key] = _bound_shapes(self.steps, env)
        return self._shape_cache[key]

    def _binding(self, inputs: Mapping[str, np.ndarray], bindings) -> tuple:
        """(symbol bindings, expected shapes, run program) for these inputs; the full
        signature check runs once per shape signature (program None: check every step)."""
        key = []
        for name, dt in self._arg_dtypes:
            v = inputs.get(name)
            if not isinstance(v, np.ndarray) or v.dtype != dt:
                key = None          # the general path explains what is wrong
                break
            key.append(v.shape)
        if bindings or key is None:
            env = bind_inputs(self.graph, inputs, bindings)
            return env, self._expected_shapes(env), None
        key = tuple(key)
        hit = self._bound.get(key)
        if hit is None:
            env = bind_inputs(self.graph, inputs, None)
            shapes = self._expected_shapes(env)
            # The run program for this signature: per step its unpacked fast form, and
            # the expected shapes only where the declared shape is left open (re-checked).
            # (ref, attrs, operands getter, the result slot when there is one else -1,
            # result slots, slots freed after, (step, shapes) to check or None)
            program = [(ref, step[2], _operand_getter(step[3]),
                        step[4][0] if len(step[4]) == 1 else -1,
                        step[4], step[7],
                        None if all(isinstance(d, int) for w in want for d in w)
                        else (step, want))
                       for step, want, ref in zip(self.steps, shapes, self._program_refs())]
            if self._prepare and all(p[6] is None for p in program):
                # nothing to re-check: straight-line code instead of the step loop (one
                # function for every such signature: the code does not depend on shapes)
                if self._straight_line is None:
                    self._straight_line = StraightLineProgram(self, self._program_refs())
                program = self._straight_line
            if len(self._bound) > 64:
                self._bound.clear()
            self._bound[key] = (env, shapes, program)
            return env, shapes, None           # first run with these shapes: check all
        return hit

    def run(self, inputs: Mapping[str, np.ndarray],
            bindings: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        env, shapes, program = self._binding(inputs, bindings)
        self._env = env
        with np.errstate(all="ignore"):     # the op refs' own policy, set once per run
            return self._run(inputs, env, shapes, program)

    def _run(self, inputs, env, shapes, program) -> dict[str, np.ndarray]:
        vals: list = list(self._sources_template())
        for name, s in self.args:
            vals[s] = np.asarray(inputs[name])
        if program is None:
            for step, want in zip(self.steps, shapes):
                self._step(step, vals, want, env)
            return {name: vals[s] for name, s in self.outputs}
        if type(program) is StraightLineProgram:
            return self._run_straight_line(program, inputs)
        ndarray = np.ndarray
        try:
            for ref, attrs, operands, out, outs_slots, free, checked in program:
                if checked is not None:
                    self._step(checked[0], vals, checked[1], env)
                    continue
                outs = ref(operands(vals), attrs)
                if out >= 0:                  # one result: the common case, no zip
                    o = outs[0]
                    vals[out] = o if type(o) is ndarray else np.asarray(o)
                else:
                    for o, s in zip(outs, outs_slots):
                        vals[s] = o if type(o) is ndarray else np.asarray(o)
                for s in free:
                    vals[s] = None
        except IndexError as e:  # data-dependent: Gather/Scatter indices, token ids
            op = next(st[0] for st, p in zip(self.steps, program) if p[2] is operands)
            raise SpecccError(f"{op.name}: index out of range in the data ({e})",
                              location=op.where()) from None
        return {name: vals[s] for name, s in self.outputs}

    @staticmethod
    def _run_straight_line(program: StraightLineProgram, inputs) -> dict[str, np.ndarray]:
        try:
            return program.program(inputs)
        except IndexError as e:  # data-dependent: Gather/Scatter indices, token ids
            op = program.op_of(e)
            if op is None:
                raise
            raise SpecccError(f"{op.name}: index out of range in the data ({e})",
                              location=op.where()) from None

    @staticmethod
    def _step(step, vals: list, want, env) -> None:
        """Run one step, checking its results against the declared types."""
        op, ref, attrs, ins, outs_slots, types, _, free, dtypes = step
        try:
            outs = ref([vals[i] for i in ins], attrs)
        except IndexError as e:  # data-dependent: Gather/Scatter indices, token ids
            raise SpecccError(f"{op.name}: index out of range in the data ({e})",
                              location=op.where()) from None
        if len(outs) != len(outs_slots):
            raise VerifyError(f"{op.name}: reference gave {len(outs)} results, "
                              f"expected {len(outs_slots)}", location=op.where())
        for o, s, t, w, dt in zip(outs, outs_slots, types, want, dtypes):
            o = np.asarray(o)
            if o.dtype != dt or not _shape_ok(w, o.shape):
                raise VerifyError(f"{op.name}: computed {o.dtype}{list(o.shape)} but "
                                  f"type says {t.bind(env)}", location=op.where())
            vals[s] = o
        for s in free:
            vals[s] = None


def _operand_getter(slots: list):
    """vals -> the step's operands, as a tuple: itemgetter skips the per-step list
    comprehension (a function call of its own before Python 3.12)."""
    if len(slots) >= 2:
        return operator.itemgetter(*slots)
    if len(slots) == 1:
        slot = slots[0]
        return lambda vals: (vals[slot],)
    return lambda vals: ()


def _bound_shapes(steps, env) -> list:
    return [[tuple(t.bind(env).shape) if st is None else st for t, st in zip(types, static)]
            for (_, _, _, _, _, types, static, _, _) in steps]


def _weight(g: Graph, op) -> np.ndarray:
    store = g.module.weights_of(g.name) if g.module else None
    name = op.attrs["name"]
    if store is None or not store.has(name):
        raise SpecccError(f"weight '{name}' has no data (shapes-only model?)",
                          location=op.where())
    return store.get(name)


def _shape_ok(want: tuple, got: tuple) -> bool:
    """`want` has ints, or Syms the inputs did not bind (which match anything)."""
    return want == got or (len(want) == len(got) and all(
        isinstance(d, Sym) or d == n for d, n in zip(want, got)))


def run_graph(g: Graph, inputs: Mapping[str, np.ndarray],
              bindings: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Execute `g` once on `inputs` (by argument name); outputs by output name."""
    return Plan(g).run(inputs, bindings)


def evaluate_slice(value, bindings: Mapping[str, int], max_ops: int = 200):
    """Evaluate `value` from compile-time information alone, for given symbol bindings.

    Walks the backward slice: constants, `sym_dims` and `shape` (from the bound type)
    are known; graph inputs and weights are not, so a slice that reads data returns
    None. Used by fuse to check what a mask subgraph computes (e.g. causal) without
    matching every exporter's spelling of it.
    """
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
