"""The op table: one `OpDef` per op name, defined as data.

Each entry gives arity, an attribute schema, shape/dtype inference, numpy reference
semantics and cost (flops, bytes read/written). The verifier checks ops against it, the
reference interpreter executes it, cost passes read it. Op groups live in
`speccc/ir/ops/*.py` and register themselves with `define(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from speccc.errors import VerifyError
from speccc.ir.types import DType, TensorType, dim_eval, parse_dim_expr

REQUIRED = object()

# Attribute kinds and the Python values they accept.
ATTR_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (float, int)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "ints": lambda v: isinstance(v, list) and all(ATTR_KINDS["int"](x) for x in v),
    "floats": lambda v: isinstance(v, list) and all(ATTR_KINDS["float"](x) for x in v),
    "strs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "tensor": lambda v: isinstance(v, np.ndarray),
    "dtype": lambda v: isinstance(v, DType),
    "any": lambda v: True,
}


@dataclass(frozen=True)
class Attr:
    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Cost:
    flops: Any = 0  # Dim: may be symbolic
    bytes_read: Any = 0
    bytes_written: Any = 0

    def bind(self, bindings) -> "Cost":
        return Cost(*(dim_eval(x, bindings) for x in (self.flops, self.bytes_read,
                                                       self.bytes_written)))


@dataclass
class InferCtx:
    """What inference sees: operand types, attrs and (when constant) operand values."""

    name: str
    types: Sequence[TensorType]
    attrs: dict
    values: Sequence[Any]  # np.ndarray or None per operand
    loc: str | None = None

    def attr(self, key: str):
        return self.attrs[key]

    def const(self, i: int) -> np.ndarray | None:
        return self.values[i] if i < len(self.values) else None

    def fail(self, msg: str, error: type[VerifyError] = VerifyError):
        raise error(f"{self.name}: {msg}", location=self.loc)


@dataclass
class OpDef:
    name: str
    arity: tuple  # (min, max); max None = variadic
    attrs: dict[str, Attr]
    infer: Callable[[InferCtx], list[TensorType]]
    ref: Callable[..., list[np.ndarray]]  # ref(inputs: list[ndarray|None], attrs) -> outputs
    cost: Callable[[InferCtx, list[TensorType]], Cost] | None = None
    doc: str = ""
    # Operand indices that must be compile-time constants (shape operands) for inference.
    shape_operands: tuple = ()
    # Optional extras: `bind(attrs, consts, types) -> ref | None` specialises the reference
    # once for a graph op (consts: each operand's `const` value or None), e.g. a reshape
    # to a constant shape; `lean_ref` is `ref` without its own np.errstate, for callers
    # that already ignore floating-point errors (Plan.run); `prepare(attrs, values, types)
    # -> ref | None` specialises it for repeated runs of one graph (Plan's run programs),
    # given the values of constant and weight operands (None for the rest), e.g. a
    # compiled kernel or a weight laid out once. All give `ref`'s results bit for bit.
    extra: dict = field(default_factory=dict)

    def full_attrs(self, attrs: dict) -> dict:
        out = {k: a.default for k, a in self.attrs.items() if not a.required}
        out.update(attrs)
        return out


OPS: dict[str, OpDef] = {}


def define(name: str, arity, infer, ref, attrs: dict | None = None, cost=None,
           doc: str = "", shape_operands=(), **extra) -> OpDef:
    if name in OPS:
        raise ValueError(f"op {name} defined twice")
    if isinstance(arity, int):
        arity = (arity, arity)
    od = OpDef(name, tuple(arity), attrs or {}, infer, ref, cost, doc, tuple(shape_operands),
               extra)
    OPS[name] = od
    return od


def lookup(name: str, loc: str | None = None) -> OpDef:
    _load_groups()
    od = OPS.get(name)
    if od is None:
        raise VerifyError(f"unknown op '{name}'", location=loc)
    return od


# Attributes any op may carry, set by passes (partition's device choice, placement).
COMMON_ATTRS: dict[str, Attr] = {
    "device": Attr("str", None),
    # `cost`: latency (ns) and energy (pJ) of the op on [npu, pim] for the graph's bindings
    "cost_ns": Attr("floats", None),
    "cost_pj": Attr("floats", None),
    # `partition`: which device region (a convex group of same-device ops) the op is in
    "region": Attr("int", None),
    # `place`: where a PIM op's weights / KV cache live (targets/pim/codegen.py)
    "pim_base_row": Attr("int", None),     # first bank row of the op's regions
    "pim_rows": Attr("int", None),         # rows per bank the op owns from pim_base_row
    "pim_channels": Attr("ints", None),    # the op's channel window
    "pim_max_context": Attr("int", None),  # attention: KV tokens the cache has room for
}


def attr_schema(od: OpDef, attrs: dict, loc: str | None = None) -> dict[str, Attr]:
    """The attributes `od` takes; an op that wraps another (a kernel op: extra `wraps`
    names the attribute holding the wrapped op's name) also takes the wrapped op's."""
    key = od.extra.get("wraps")
    if key is None or not isinstance(attrs.get(key), str):
        return od.attrs
    return {**lookup(attrs[key], loc).attrs, **od.attrs}


def check_attrs(od: OpDef, attrs: dict, loc: str | None) -> None:
    schema = attr_schema(od, attrs, loc)
    for k, v in attrs.items():
        spec = schema.get(k) or COMMON_ATTRS.get(k)
        if spec is None:
            known = ", ".join(sorted(schema)) or "none"
            raise VerifyError(f"{od.name}: unknown attribute '{k}' (known: {known})", location=loc)
        if not ATTR_KINDS[spec.kind](v):
            raise VerifyError(f"{od.name}: attribute '{k}' must be {spec.kind}, got {v!r}",
                              location=loc)
    for k, spec in schema.items():
        if spec.required and k not in attrs:
            raise VerifyError(f"{od.name}: missing required attribute '{k}'", location=loc)


def check_arity(od: OpDef, n: int, loc: str | None) -> None:
    lo, hi = od.arity
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'N'}"
        raise VerifyError(f"{od.name}: expects {want} operands, got {n}", location=loc)


def constant_of(value) -> np.ndarray | None:
    """Compile-time value of an IR value: `const` data, or for `sym_dims` an object
    array of int/Sym dims (see speccc.ir.folding); None when not known."""
    op = getattr(value, "op", None)
    if op is None:
        return None
    if op.name == "const":
        return op.attrs["value"]
    if op.name == "sym_dims":
        return sym_dims_value(op)
    return None


def sym_dims_value(op) -> np.ndarray:
    """A `sym_dims` op's dims as an object array of int/Sym (0-d when `scalar`)."""
    arr = np.array([int(t) if t.lstrip("-").isdigit() else parse_dim_expr(t)
                    for t in op.attrs["dims"]], dtype=object)
    return arr.reshape(()) if op.attrs.get("scalar") else arr


def infer_types(name: str, types: Sequence[TensorType], attrs: dict, operands=None,
                loc: str | None = None) -> list[TensorType]:
    od = lookup(name, loc)
    check_arity(od, len(types), loc)
    check_attrs(od, attrs, loc)
    values = [constant_of(v) if v is not None else None for v in (operands or [])]
    ctx = InferCtx(name, list(types), od.full_attrs(attrs), values, loc)
    return od.infer(ctx)


def op_cost(op) -> Cost:
    od = lookup(op.name, op.loc)
    ctx = InferCtx(op.name, [v.type for v in op.operands], od.full_attrs(op.attrs),
                   [constant_of(v) for v in op.operands], op.loc)
    out = [r.type for r in op.results]
    if od.cost is not None:
        return od.cost(ctx, out)
    return default_cost(ctx, out)


def io_bytes(ctx: InferCtx, out: list[TensorType]) -> tuple:
    """(bytes read, bytes written): every operand in, every result out."""
    from speccc.ir.types import dim_add
    read: Any = 0
    for t in ctx.types:
        read = dim_add(read, t.nbytes())
    written: Any = 0
    for t in out:
        written = dim_add(written, t.nbytes())
    return read, written


def default_cost(ctx: InferCtx, out: list[TensorType]) -> Cost:
    """One flop per output element; bytes are operands read plus results written."""
    from speccc.ir.types import dim_add
    flops: Any = 0
    for t in out:
        flops = dim_add(flops, t.numel())
    return Cost(flops, *io_bytes(ctx, out))


def _load_groups() -> None:
    """Import every op group module once (they call `define`)."""
    from speccc.ir.plugins import import_submodules
    import_submodules("speccc.ir.ops")


def all_ops() -> dict[str, OpDef]:
    _load_groups()
    return OPS
