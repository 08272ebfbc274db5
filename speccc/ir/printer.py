"""Canonical text for modules and graphs (the parser reads it back).

Canonical means: ops in deterministic topological order, results numbered %0, %1, ...
in that order, arguments keep their names, attributes sorted by key, floats in their
shortest round-tripping form. So printing is byte-deterministic and print∘parse is the
identity on canonical text.
"""
from __future__ import annotations

import json
import math

import numpy as np

from speccc.ir.core import Graph, Module, Value
from speccc.ir.types import DType, TensorType


def format_float(x: float, dtype: DType | None = None) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if dtype in (DType.f32, DType.f16, DType.bf16):
        s = str(dtype.numpy.type(x)) if dtype != DType.bf16 else repr(float(x))
    else:
        s = repr(float(x))
    if not any(c in s for c in ".en"):
        s += ".0"
    return s


def format_attr(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_float(float(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, DType):
        return v.value
    if isinstance(v, list):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    if isinstance(v, np.ndarray):
        return format_dense(v)
    raise TypeError(f"cannot print attribute value {v!r}")


def format_dense(a: np.ndarray) -> str:
    dtype = DType.from_numpy(a.dtype)
    t = TensorType(tuple(a.shape), dtype)
    flat = a.reshape(-1)
    if dtype.is_float:
        items = [format_float(float(x), dtype) for x in flat]
    elif dtype == DType.string:
        items = [json.dumps(str(x)) for x in flat]
    else:
        items = [str(int(x)) for x in flat]
    return f"dense<{t} [{', '.join(items)}]>"


def format_attr_dict(attrs: dict) -> str:
    if not attrs:
        return ""
    return "{" + ", ".join(f"{k} = {format_attr(attrs[k])}" for k in sorted(attrs)) + "}"


def print_graph(g: Graph) -> str:
    names: dict[int, str] = {}
    for a in g.arguments:
        names[id(a.result)] = "%" + a.result.name
    lines = []
    counter = 0
    ops = g.ops()
    for op in ops:
        for r in op.results:
            names[id(r)] = f"%{counter}"
            counter += 1

    def n(v: Value) -> str:
        return names[id(v)]

    args = ", ".join(f"%{a.result.name}: {a.result.type}" for a in g.arguments)
    outs = ", ".join(f"{json.dumps(nm)}: {v.type}" for nm, v in zip(g.output_names, g.outputs))
    head = f"graph @{g.name}({args}) -> ({outs})"
    if g.attrs:
        head += " attributes " + format_attr_dict(g.attrs)
    lines.append(head + " {")
    for op in ops:
        res = ", ".join(n(r) for r in op.results)
        operands = ", ".join(n(v) for v in op.operands)
        attrs = format_attr_dict(op.attrs)
        types = ", ".join(str(r.type) for r in op.results)
        lines.append(f"  {res} = {op.name}({operands}){' ' + attrs if attrs else ''} : {types}")
    lines.append("  return " + ", ".join(n(v) for v in g.outputs) if g.outputs else "  return")
    lines.append("}")
    return "\n".join(lines) + "\n"


def print_module(m: Module) -> str:
    return "\n".join(print_graph(g) for g in m)
