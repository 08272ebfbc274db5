"""The ONNX model as onnx itself sees it, before and beside conversion (onnx_import.py
walks the graph): loading the protobuf without external data, refusing names speccc
cannot carry, onnx.checker without weight bytes, the scan that reports every unsupported
(op, opset) at once, and onnx's own shape inference as an independent check on
speccc's shape rules.
"""
from __future__ import annotations

from pathlib import Path

import google.protobuf.message
import onnx

from speccc.errors import SpecccError, UnsupportedError
from speccc.frontend.registry import find_converter


def load_model(path) -> onnx.ModelProto:
    p = Path(path)
    if not p.exists():
        raise SpecccError("no such file", location=str(path))
    if not p.is_file():
        raise SpecccError("not a file", location=str(path))
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (google.protobuf.message.DecodeError, ValueError, RuntimeError) as e:
        raise SpecccError(f"not an ONNX model (protobuf did not parse: {e})",
                          location=str(path)) from None
    if not model.graph.node and not model.graph.input and not model.graph.output:
        raise SpecccError("not an ONNX model (no graph)", location=str(path))
    return model


def _bad_name(name) -> str | None:
    """Why an ONNX name cannot be represented (None if it can)."""
    if not isinstance(name, str):
        return "is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character (NUL, newline, ...)"
    return None


def check_names(model: onnx.ModelProto, source: str) -> None:
    """Refuse names speccc cannot carry faithfully, before anything uses them (protobuf
    hands invalid UTF-8 over as bytes; a NUL would be cut short in a .npz member)."""
    g = model.graph
    named = [("graph input", vi.name) for vi in g.input]
    named += [("graph output", vi.name) for vi in g.output]
    named += [("initializer", t.name) for t in g.initializer]
    for i, node in enumerate(g.node):
        named += [("node", node.name), ("op type", node.op_type), ("domain", node.domain)]
        named += [(f"value of node #{i}", n) for n in list(node.input) + list(node.output)]
    for what, name in named:
        why = _bad_name(name)
        if why:
            raise SpecccError(f"{what} name {name!r} {why}; rename it in the model",
                              location=source)
    inputs = [vi.name for vi in g.input if vi.name not in {t.name for t in g.initializer}]
    if "" in inputs or "" in [vi.name for vi in g.output]:
        raise SpecccError("a graph input or output has an empty name", location=source)


def opset_of(model: onnx.ModelProto, domain: str = "") -> int:
    for imp in model.opset_import:
        if imp.domain in (domain, "ai.onnx" if domain == "" else domain):
            return imp.version
    return 1 if domain else 0


def non_tensor_values(model: onnx.ModelProto) -> list[str]:
    """Graph inputs/outputs whose type is not a tensor (sequence, optional, map)."""
    return [vi.name for vi in list(model.graph.input) + list(model.graph.output)
            if vi.type.WhichOneof("value") not in ("tensor_type", None)]


def unsupported_ops(model: onnx.ModelProto) -> dict[tuple, list[str]]:
    """(domain, op, opset) -> node names, for every node without a converter."""
    missing: dict[tuple, list[str]] = {}
    for i, node in enumerate(model.graph.node):
        ver = opset_of(model, node.domain if node.domain != "ai.onnx" else "")
        if find_converter(node.domain, node.op_type, ver) is None:
            key = (node.domain or "ai.onnx", node.op_type, ver)
            missing.setdefault(key, []).append(node.name or f"#{i}")
    return missing


def scan_unsupported(model: onnx.ModelProto, source: str) -> None:
    newest = onnx.defs.onnx_opset_version()
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not 1 <= imp.version <= newest:
            raise UnsupportedError(f"opset {imp.version} of the default domain does not exist "
                                   f"(onnx {onnx.__version__} knows 1..{newest})",
                                   location=source)
    bad = non_tensor_values(model)
    if bad:
        raise UnsupportedError("only tensor-typed graph inputs/outputs are supported; "
                               f"non-tensor: {', '.join(bad)}", location=source)
    missing = unsupported_ops(model)
    if missing:
        parts = []
        for (dom, op, ver), names in sorted(missing.items()):
            shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")
            prefix = "" if dom == "ai.onnx" else dom + "."
            parts.append(f"{prefix}{op} (opset {ver}; nodes {shown})")
        raise UnsupportedError(f"{len(missing)} unsupported op(s): " + "; ".join(parts),
                               location=source)


# Initializers above this many bytes are left out of what onnx's checker and shape
# inference see (declared as typed inputs instead).
_SHAPE_DATA_BYTES = 1 << 16


def check_without_data(model: onnx.ModelProto, full_check: bool = False) -> None:
    """onnx.checker (+ strict shape inference when full_check) without reading weights.

    onnx.checker rejects an external-data location that is not a regular file, and
    shapes-only models point at none; and it serializes the model it checks, which for
    embedded weights means a second and third copy of hundreds of MB. So external and
    large initializers are checked as what they are to the graph, typed and fully shaped
    values, declared as inputs of a copy without them (their bytes are checked when the
    importer converts them).
    Raises onnx.checker.ValidationError / onnx.shape_inference.InferenceError.
    """
    onnx.checker.check_model(without_weight_data(model), full_check=full_check)


def without_weight_data(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model`, or a copy whose external or large initializers are typed graph inputs,
    so onnx's checker and shape inference never open a data file (speccc reads those
    itself, checked: speccc/frontend/external_data.py) nor hold weight bytes twice."""
    def dataless(t) -> bool:
        return (t.data_location == onnx.TensorProto.EXTERNAL
                or len(t.raw_data) > _SHAPE_DATA_BYTES)
    g = model.graph
    if not any(dataless(t) for t in g.initializer):
        return model
    # Field by field: a whole-model CopyFrom would hold a second copy of the weights.
    m = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain",
                  "model_version", "doc_string"):
        setattr(m, field, getattr(model, field))
    for field in ("opset_import", "functions", "metadata_props"):
        getattr(m, field).extend(getattr(model, field))
    m.graph.name = g.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(m.graph, field).extend(getattr(g, field))
    m.graph.initializer.extend(t for t in g.initializer if not dataless(t))
    m.graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                         for t in g.initializer if dataless(t))
    return m


def check_model(model: onnx.ModelProto, source: str) -> None:
    try:
        check_without_data(model)
    except onnx.checker.ValidationError as e:
        text = " ".join(str(e).split())  # onnx's message spans lines; keep all of it, on one
        raise SpecccError(f"invalid ONNX model: {text[:500]}", location=source) from None


# onnx's data propagation treats every 1-D tensor as a possible shape and walks its
# elements: a declared 1-D input of 2^26 elements takes it 50 s (issue 17). Shape
# vectors are short; with a longer 1-D input the cross-check runs without propagation.
DATA_PROP_MAX_1D = 1 << 16


def _small_1d(model: onnx.ModelProto) -> bool:
    dims = [[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.input]
    dims += [list(t.dims) for t in model.graph.initializer]
    return all(len(d) != 1 or d[0] <= DATA_PROP_MAX_1D for d in dims)


def static_onnx_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    """Value name -> shape, for values onnx.shape_inference (with data propagation)
    infers fully static; an independent check on speccc's own shape rules.
    Large initializers go in as typed inputs: onnx serializes the model it infers on, and
    weight bytes (hundreds of MB for a real model) carry no shape information."""
    stripped = without_weight_data(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(stripped, data_prop=_small_1d(stripped))
    except Exception:  # onnx's inference is advisory here; ours is authoritative
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape") and all(
                d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = tuple(int(d.dim_value) for d in tt.shape.dim)
    return out


def cross_check_shape(v, onnx_shape: tuple, name: str, loc: str) -> None:
    ours = v.type.shape
    if len(ours) != len(onnx_shape) or any(isinstance(a, int) and a != b
                                           for a, b in zip(ours, onnx_shape)):
        raise SpecccError(f"speccc infers {v.type} for '{name}' but ONNX shape inference "
                          f"gives {list(onnx_shape)}; this is a speccc converter bug, please "
                          "report it", location=loc)
