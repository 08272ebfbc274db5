"""ONNX converter registry: per (domain, op type), per opset version.

A converter is `fn(ctx: NodeCtx) -> list[Value | None]` registered with
`@converter("Reshape", since=14)`; the importer picks, for a model's opset, the entry
with the largest `since` not above it. Simple one-to-one ops are registered from tables
with `simple(...)`. Converter modules live in speccc/frontend/convert/ and register on
import.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from speccc.errors import NotConstantError, SpecccError
from speccc.ir.core import Graph, Value
from speccc.ir.folding import create_or_fold, materialize
from speccc.ir.opdefs import constant_of
from speccc.ir.types import DType

CONVERTERS: dict[tuple[str, str], list[tuple[int, Callable]]] = {}


def _domain(d: str) -> str:
    return "" if d in ("", "ai.onnx") else d


def converter(op_type: str, since: int = 1, domain: str = ""):
    def deco(fn):
        entries = CONVERTERS.setdefault((_domain(domain), op_type), [])
        entries.append((since, fn))
        entries.sort(key=lambda e: e[0])
        return fn
    return deco


def find_converter(domain: str, op_type: str, opset: int) -> Callable | None:
    _load()
    best = None
    for since, fn in CONVERTERS.get((_domain(domain), op_type), []):
        if since <= opset:
            best = fn
    return best


def supported_ops() -> dict[tuple[str, str], list[int]]:
    _load()
    return {k: [s for s, _ in v] for k, v in sorted(CONVERTERS.items())}


ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: DType.f32, onnx.TensorProto.DOUBLE: DType.f64,
    onnx.TensorProto.FLOAT16: DType.f16, onnx.TensorProto.BFLOAT16: DType.bf16,
    onnx.TensorProto.INT64: DType.i64, onnx.TensorProto.INT32: DType.i32,
    onnx.TensorProto.INT16: DType.i16, onnx.TensorProto.INT8: DType.i8,
    onnx.TensorProto.UINT64: DType.u64, onnx.TensorProto.UINT32: DType.u32,
    onnx.TensorProto.UINT16: DType.u16, onnx.TensorProto.UINT8: DType.u8,
    onnx.TensorProto.INT4: DType.i4, onnx.TensorProto.UINT4: DType.u4,
    onnx.TensorProto.INT2: DType.i2, onnx.TensorProto.UINT2: DType.u2,
    onnx.TensorProto.FLOAT8E4M3FN: DType.f8e4m3fn,
    onnx.TensorProto.FLOAT8E4M3FNUZ: DType.f8e4m3fnuz,
    onnx.TensorProto.FLOAT8E5M2: DType.f8e5m2,
    onnx.TensorProto.FLOAT8E5M2FNUZ: DType.f8e5m2fnuz,
    onnx.TensorProto.FLOAT8E8M0: DType.f8e8m0,
    onnx.TensorProto.FLOAT4E2M1: DType.f4e2m1,
    onnx.TensorProto.BOOL: DType.bool, onnx.TensorProto.STRING: DType.string,
}


def dtype_of(onnx_elem_type: int, where: str = "") -> DType:
    dt = ONNX_DTYPES.get(onnx_elem_type)
    if dt is None:
        name = onnx.TensorProto.DataType.Name(onnx_elem_type)
        raise SpecccError(f"element type {name} is not supported", location=where or None)
    return dt


class NodeCtx:
    """What a converter sees of one ONNX node, and how it emits IR."""

    def __init__(self, node: onnx.NodeProto, inputs: list[Value | None], graph: Graph,
                 opset: int, loc: str):
        self.node, self.graph, self.opset, self.loc = node, graph, opset, loc
        self.inputs = inputs
        self.attrs: dict[str, Any] = {a.name: helper.get_attribute_value(a)
                                      for a in node.attribute}

    @property
    def op_type(self) -> str:
        return self.node.op_type

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def attr(self, name: str, default=None):
        v = self.attrs.get(name, default)
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, onnx.TensorProto):
            return numpy_helper.to_array(v)
        return v

    def has_attr(self, name: str) -> bool:
        return name in self.attrs

    def const_input(self, i: int) -> np.ndarray | None:
        v = self.input(i)
        return None if v is None else constant_of(v)

    def require_const(self, i: int, what: str) -> np.ndarray:
        arr = self.const_input(i)
        if arr is None:
            self.fail(f"{what} (input {i}) must be a compile-time constant", NotConstantError)
        return arr

    def emit(self, name: str, operands, attrs=None) -> list[Value]:
        """Create (or fold) one IR op; returns its results."""
        return create_or_fold(self.graph, name, list(operands), attrs or {}, loc=self.loc)

    def emit1(self, name: str, operands, attrs=None) -> Value:
        return self.emit(name, operands, attrs)[0]

    def const(self, array) -> Value:
        return materialize(self.graph, np.asarray(array), self.loc).result

    def fail(self, msg: str, error: type[SpecccError] = SpecccError):
        raise error(f"{self.op_type}: {msg}", location=self.loc)


def simple(table: dict[str, str], since: int = 1, domain: str = "",
           attrs: Callable[[NodeCtx], dict] | None = None) -> None:
    """Register one-to-one converters: ONNX op -> IR op with the same operands."""
    for onnx_name, ir_name in table.items():
        def fn(ctx: NodeCtx, ir_name=ir_name):
            ops = [v for v in ctx.inputs]
            while ops and ops[-1] is None:
                ops.pop()
            return ctx.emit(ir_name, ops, attrs(ctx) if attrs else {})
        converter(onnx_name, since, domain)(fn)


def _load() -> None:
    from speccc.ir.plugins import import_submodules
    import_submodules("speccc.frontend.convert")
