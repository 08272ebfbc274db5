"""ONNX -> IR importer.

Loads like IREE's importer: parse the protobuf without touching external data, run
`onnx.checker` and shape inference, scan the whole graph and report *all* unsupported
(op, opset) pairs at once (those steps: onnx_import_checks.py), then convert node by
node with per-op, per-opset converters (speccc/frontend/convert/). Shape subgraphs fold
while building (see ir/folding.py). Initializers become `weight` ops whose bytes load
lazily; with `shapes_only` no weight's bytes are read (only small tensors stored inside
the file stay readable, for fuse's mask check), so multi-GB models import in seconds.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from speccc.errors import SpecccError
from speccc.frontend.kv_cache import record_kv_cache
# load_model, check_without_data, non_tensor_values and unsupported_ops are imported
# from here by callers that predate the split: kept importable from this module
from speccc.frontend.onnx_import_checks import (  # noqa: F401
    check_model, check_names, check_without_data, cross_check_shape, load_model,
    non_tensor_values, opset_of, scan_unsupported, static_onnx_shapes, unsupported_ops)
from speccc.frontend.registry import NodeCtx, dtype_of, find_converter
from speccc.ir.core import Graph, Module
from speccc.ir.types import MAX_DIM, Sym, TensorType

# Integer initializers up to this many elements (shape vectors, axes, indices) and
# scalars of any type (eps, scales) become inline `const`s so they fold; everything else
# (including small float vectors such as norm scales) is a weight stored out of line.
INLINE_INT_ELEMENTS = 64
# With shapes_only, a small tensor stored inside the .onnx still gets its (lazy) data: a
# static-shape export folds its causal mask into one, and fuse reads it to check it is
# causal (passes/_fuse_rules_attention.py). Nothing is read unless a pass asks.
SHAPES_ONLY_KEEP_ELEMENTS = 1 << 16

# ONNX dim_param spellings mapped to speccc's canonical symbols.
DIM_ALIASES = {
    "batch": "B", "batch_size": "B", "n": "B", "b": "B",
    "sequence_length": "T", "seq_len": "T", "seq": "T", "t": "T", "sequence": "T",
    "past_sequence_length": "P", "past_seq_len": "P", "past_length": "P", "p": "P",
}


@dataclass
class ImportOptions:
    shapes_only: bool = False
    graph_name: str = "target"
    # Inputs replaced by these constants (the ONNX backend specializes shape inputs).
    constant_inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Fix input dims: name -> shape (ints); used by the backend for concrete inputs.
    input_shapes: Mapping[str, tuple] = field(default_factory=dict)
    check: bool = True
    # Where external data files live (the model file's folder when importing a path).
    base_dir: str = "."
    # Compare every result whose shape ONNX's own inference knows statically with ours.
    cross_check: bool = True


def symbol_for(dim_param: str) -> str:
    key = dim_param.strip()
    if key.lower() in DIM_ALIASES:
        return DIM_ALIASES[key.lower()]
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    if not name or not name[0].isalpha():
        name = "D" + name
    return name


def _escape(ch: str) -> str:
    return "".join(f"${b:02X}" for b in ch.encode())


def sanitize_name(name: str) -> str:
    """ONNX name -> IR value name, one to one (so `a b` and `a_b` stay two inputs):
    a character IR names cannot hold, and `$` itself (the escape), becomes `$HH` per
    UTF-8 byte; an all-digit name, which would read as a numbered value, has its first
    digit escaped. Names of only [A-Za-z0-9_.-] are unchanged."""
    s = re.sub(r"[^A-Za-z0-9_.-]", lambda m: _escape(m.group()), name)
    return _escape(s[0]) + s[1:] if s.isdigit() else s


def onnx_name(ir_name: str) -> str:
    """The ONNX name an IR argument name came from (sanitize_name's inverse), for
    messages that should speak the user's names."""
    raw = re.sub(r"\$([0-9A-F]{2})", lambda m: f"%{m.group(1)}", ir_name)
    from urllib.parse import unquote_to_bytes
    return unquote_to_bytes(raw).decode("utf-8", "replace") if "$" in ir_name else ir_name


def _dim(value: int, where: str) -> int:
    """A declared dimension: 0..MAX_DIM (a negative or 2^62 dim made types nonsense)."""
    if not 0 <= int(value) <= MAX_DIM:
        raise SpecccError(f"dimension {value} is outside [0, {MAX_DIM}]", location=where)
    return int(value)


def _type_from_value_info(vi, where: str, fixed: tuple | None, fresh) -> TensorType:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise SpecccError(f"input '{vi.name}' is not a tensor", location=where)
    dtype = dtype_of(tt.elem_type, where)
    if fixed is not None:
        return TensorType(tuple(int(d) for d in fixed), dtype)
    if not tt.HasField("shape"):
        raise SpecccError(f"input '{vi.name}' has no shape", location=where)
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(_dim(d.dim_value, where))
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(Sym.of(symbol_for(d.dim_param)))
        else:
            dims.append(Sym.of(fresh()))
    return TensorType(tuple(dims), dtype)


def import_model(model_or_path, options: ImportOptions | None = None,
                 module: Module | None = None) -> Module:
    opts = options or ImportOptions()
    # a reference that builds its model in memory (speccc.zoo.resolve.ZooModel; the
    # frontend does not import the zoo, which imports it)
    if callable(getattr(model_or_path, "proto", None)):
        model, source = model_or_path.proto(), model_or_path.name
        opts = dataclasses.replace(opts, shapes_only=opts.shapes_only
                                   or model_or_path.shapes_only)
    elif isinstance(model_or_path, (str, Path)):
        source = str(model_or_path)
        model = load_model(model_or_path)
        opts = dataclasses.replace(opts, base_dir=str(Path(model_or_path).parent))
    else:
        model, source = model_or_path, "<model>"
    check_names(model, source)
    if opts.check:
        check_model(model, source)
    scan_unsupported(model, source)
    module = module or Module()
    g = Graph(opts.graph_name)
    module.add_graph(g)
    _convert_graph(model, g, module, opts, source)
    record_kv_cache(g)
    return module


def _convert_graph(model, g: Graph, module: Module, opts: ImportOptions, source: str) -> None:
    graph = model.graph
    base_dir = opts.base_dir
    env: dict[str, object] = {"": None}
    counter = iter(range(1 << 30))

    def fresh() -> str:
        return f"D{next(counter)}"

    inits = {t.name: t for t in graph.initializer}
    onnx_shapes = static_onnx_shapes(model) if opts.cross_check and not opts.input_shapes else {}
    for vi in graph.input:
        if vi.name in inits:
            continue  # old-style models list initializers as inputs
        if vi.name in opts.constant_inputs:
            env[vi.name] = _const(g, np.asarray(opts.constant_inputs[vi.name]), vi.name)
            continue
        t = _type_from_value_info(vi, f"{source}: input '{vi.name}'",
                                  opts.input_shapes.get(vi.name), fresh)
        env[vi.name] = g.add_argument(sanitize_name(vi.name), t)
    for name, tensor in inits.items():
        env[name] = _initializer(g, module, tensor, base_dir, opts.shapes_only, source)
    for i, node in enumerate(graph.node):
        loc = f"{source}: node '{node.name or '#' + str(i)}' ({node.op_type})"
        for n in node.input:
            if n not in env:
                raise SpecccError(f"input '{n}' is not defined before use", location=loc)
        ver = opset_of(model, node.domain if node.domain != "ai.onnx" else "")
        ctx = NodeCtx(node, [env[n] for n in node.input], g, ver, loc)
        fn = find_converter(node.domain, node.op_type, ver)
        outs = fn(ctx)
        if len(outs) < len([o for o in node.output if o]):
            raise SpecccError(f"converter produced {len(outs)} of {len(node.output)} outputs",
                              location=loc)
        for name, v in zip(node.output, outs):
            if name:
                env[name] = v
                if v is not None and name in onnx_shapes:
                    cross_check_shape(v, onnx_shapes[name], name, loc)
    outs, names = [], []
    for vo in graph.output:
        if vo.name not in env or env[vo.name] is None:
            raise SpecccError(f"graph output '{vo.name}' is never produced", location=source)
        outs.append(env[vo.name])
        names.append(vo.name)
    g.set_outputs(outs, names)
    g.remove_dead()


def _const(g: Graph, arr: np.ndarray, loc: str):
    return g.create("const", [], {"value": np.asarray(arr, order="C")}, loc=loc).result


def _initializer(g: Graph, module: Module, tensor, base_dir: str, shapes_only: bool,
                 source: str):
    where = f"{source}: initializer '{tensor.name}'"
    dtype = dtype_of(tensor.data_type, where)
    shape = tuple(_dim(d, where) for d in tensor.dims)
    numel = int(np.prod(shape, dtype=np.int64))
    external = tensor.data_location == onnx.TensorProto.EXTERNAL
    inline = numel <= 1 or (not dtype.is_float and numel <= INLINE_INT_ELEMENTS)
    if inline and not external:
        return _const(g, numpy_helper.to_array(tensor), where)
    name = tensor.name
    op = g.create("weight", [], {"name": name}, result_types=[TensorType(shape, dtype)],
                  loc=where)
    if not shapes_only or (not external and numel <= SHAPES_ONLY_KEEP_ELEMENTS):
        bits = dtype.itemsize_bits
        module.weights_of(g.name).put_lazy(
            name, lambda t=tensor: _load_tensor(t, base_dir, bits, where))
    return op.result


def _load_tensor(tensor, base_dir: str, bits: int, where: str) -> np.ndarray:
    from speccc.frontend.external_data import load_external
    try:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            return load_external(tensor, base_dir, bits, where)
        return numpy_helper.to_array(tensor)
    except (OSError, ValueError, onnx.checker.ValidationError) as e:
        raise SpecccError(f"cannot read weight data ({e}); use --shapes-only for models "
                          "without data", location=where) from None
