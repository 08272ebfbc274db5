"""ONNX ops converted by inlining their ONNX function bodies.

Some ONNX ops are *defined* by a function body over simpler ops (ONNX `Attention` builds
one from the node's attributes and input types). Converting the body node by node with
the ordinary converters gives exactly the ONNX semantics, and the result is the
decomposed form exporters emit anyway, which `fuse` recognizes. Only ops whose node
cases all pass this way are registered here.
"""
from __future__ import annotations

import onnx
from onnx import helper

from speccc.frontend.registry import ONNX_DTYPES, NodeCtx, converter, find_converter
from speccc.ir.types import Sym

_ONNX_ELEM = {dt: code for code, dt in ONNX_DTYPES.items()}


def _type_proto(value) -> onnx.TypeProto:
    t = value.type
    dims = [d.expr() if isinstance(d, Sym) else int(d) for d in t.shape]
    return helper.make_tensor_type_proto(_ONNX_ELEM[t.dtype], dims)


def _function_body(ctx) -> tuple[onnx.FunctionProto, int]:
    node = ctx.node
    schema = onnx.defs.get_schema(node.op_type, ctx.opset, node.domain)
    fn = onnx.FunctionProto()
    if schema.has_context_dependent_function:
        types = [_type_proto(v).SerializeToString() if v is not None
                 else onnx.TypeProto().SerializeToString() for v in ctx.inputs]
        versions = [v for v in schema.context_dependent_function_opset_versions
                    if v <= ctx.opset]
        fn.ParseFromString(schema.get_context_dependent_function_with_opset_version(
            max(versions), node.SerializeToString(), types))
    elif schema.has_function:
        versions = [v for v in schema.function_opset_versions if v <= ctx.opset]
        fn.ParseFromString(schema.get_function_with_opset_version(max(versions)))
    else:
        ctx.fail("has no ONNX function body to expand")
    opset = {imp.domain: imp.version for imp in fn.opset_import}.get("", ctx.opset)
    return fn, opset


def _bind_attrs(inner: onnx.NodeProto, outer: dict) -> onnx.NodeProto:
    """Resolve attribute references (`ref_attr_name`) against the calling node."""
    n = onnx.NodeProto()
    n.CopyFrom(inner)
    del n.attribute[:]
    for a in inner.attribute:
        if a.ref_attr_name:
            if a.ref_attr_name in outer:
                b = onnx.AttributeProto()
                b.CopyFrom(outer[a.ref_attr_name])
                b.name = a.name
                n.attribute.append(b)
        else:
            n.attribute.append(a)
    return n


def expand(ctx: NodeCtx) -> list:
    fn, opset = _function_body(ctx)
    outer_attrs = {a.name: a for a in ctx.node.attribute}
    env = {name: (ctx.inputs[i] if i < len(ctx.inputs) else None)
           for i, name in enumerate(fn.input)}
    env[""] = None
    for inner in fn.node:
        inner = _bind_attrs(inner, outer_attrs)
        conv = find_converter(inner.domain, inner.op_type, opset)
        if conv is None:
            ctx.fail(f"its function body uses {inner.op_type} (opset {opset}), which has no "
                     "converter")
        ictx = NodeCtx(inner, [env[i] for i in inner.input], ctx.graph, opset, ctx.loc)
        for name, v in zip(inner.output, conv(ictx)):
            if name:
                env[name] = v
    return [env.get(name) for name in fn.output]


converter("Attention", since=23)(expand)
