"""Reading an initializer's external data, checked by speccc itself.

onnx's own loader has refused escapes only since 1.21 (1.20.1 followed a symlinked data
file to /etc/passwd), so the safety of `exec` must not rest on the installed onnx: the
location is resolved here (symlinks included) and must stay inside the model's folder,
be a regular file, and hold exactly the bytes the tensor's declared shape needs; the
bytes are then read here, and onnx only decodes them.
"""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import onnx
from onnx import numpy_helper

from speccc.errors import SpecccError
from speccc.textio import memory_bytes


def declared_nbytes(tensor: onnx.TensorProto, bits: int) -> int:
    numel = math.prod(int(d) for d in tensor.dims)
    return (numel * bits + 7) // 8


def _fields(tensor: onnx.TensorProto, where: str) -> tuple[str, int, int | None]:
    info = {e.key: e.value for e in tensor.external_data}
    location = info.get("location", "")
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise SpecccError(f"external data offset/length are not integers: {info}",
                          location=where) from None
    if not location or offset < 0 or (length is not None and length < 0):
        raise SpecccError(f"external data needs a location and non-negative offset/length "
                          f"(got {info})", location=where)
    return location, offset, length


def resolve_location(location: str, base_dir: str, where: str) -> Path:
    """The data file, after resolving symlinks; inside the model folder, regular."""
    base = Path(os.path.realpath(base_dir))
    if os.path.isabs(location) or "\0" in location:
        raise SpecccError(f"external data location {location!r} must be a path relative to "
                          "the model's folder", location=where)
    real = Path(os.path.realpath(base / location))
    if not real.is_relative_to(base):
        raise SpecccError(f"external data location {location!r} resolves to {real}, outside "
                          f"the model's folder {base}; refused", location=where)
    try:
        st = real.stat()
    except OSError as e:
        raise SpecccError(f"cannot read weight data: {location!r}: {e.strerror}; use "
                          "--shapes-only for models without data", location=where) from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecccError(f"external data {location!r} is not a regular file", location=where)
    return real


def load_external(tensor: onnx.TensorProto, base_dir: str, bits: int, where: str):
    """The initializer's array, read from its checked external file."""
    location, offset, length = _fields(tensor, where)
    path = resolve_location(location, base_dir, where)
    need = declared_nbytes(tensor, bits)
    if length is not None and length != need:
        raise SpecccError(f"external data length {length} bytes does not match the declared "
                          f"shape {list(tensor.dims)} ({need} bytes)", location=where)
    if need > memory_bytes() // 2:  # one weight beyond that is a bad file, not a model
        raise SpecccError(f"declared shape {list(tensor.dims)} needs {need:,} bytes, more "
                          "than half this machine's memory; use --shapes-only",
                          location=where)
    size = path.stat().st_size
    if offset + need > size:
        raise SpecccError(f"external data {location!r} has {size} bytes; the tensor needs "
                          f"{need} at offset {offset}", location=where)
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(need)
    t = onnx.TensorProto()
    t.CopyFrom(tensor)
    del t.external_data[:]
    t.data_location = onnx.TensorProto.DEFAULT
    t.raw_data = data
    return numpy_helper.to_array(t)
