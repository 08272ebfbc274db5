""".npz files: inputs read only after their .npy headers were checked (nothing is
decompressed before its name, shape and total size are known), outputs written
atomically under their ONNX names with no path meaning.

Dtypes .npy cannot name (ml_dtypes' bfloat16, float8, int4...: numpy writes them as raw
void `V2`/`V1` and reads back bytes) are stored as their bits in the unsigned integer of
the same width (bfloat16 -> uint16), and the member `__speccc_dtypes__` (a 0-d string
array holding JSON, `{"logits": "bfloat16"}`) names each such array's dtype. Reading
views the bits back, so values round-trip exactly; a file without the member is a plain
.npz, read as it is. With numpy alone:
`np.load(f)["x"].view(ml_dtypes.bfloat16)`; to write one:
`np.savez(f, x=a.view(np.uint16), __speccc_dtypes__=json.dumps({"x": "bfloat16"}))`.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Mapping

import numpy as np

from speccc.errors import SpecccError
from speccc.fileio import write_bytes_atomic
from speccc.textio import check_regular_file, memory_bytes


def save_npz_atomic(path, arrays: Mapping[str, np.ndarray]) -> None:
    """One array per output, each under its ONNX name. A name an .npz member cannot carry
    without path meaning (`../x`, `a/b`) is refused rather than written as a path."""
    for name in arrays:
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise SpecccError(f"output name {name!r} would be a path inside the .npz; "
                              "rename the graph output", location=str(path))
        if name == DTYPES_ENTRY:
            raise SpecccError(f"output name {name!r} is the member naming stored dtypes; "
                              "rename the graph output", location=str(path))
    stored, dtypes = {}, {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype in _bit_dtypes().values():
            stored[name] = a.view(np.dtype(f"u{a.dtype.itemsize}"))
            dtypes[name] = a.dtype.name
        else:
            stored[name] = a
    if dtypes:
        stored[DTYPES_ENTRY] = np.array(json.dumps(dtypes, sort_keys=True))
    buf = io.BytesIO()
    np.savez(buf, **stored)
    write_bytes_atomic(path, buf.getvalue())


DTYPES_ENTRY = "__speccc_dtypes__"
_DTYPES_MAX_BYTES = 1 << 20      # the member is read before the arrays: bounded first


def _bit_dtypes() -> dict[str, np.dtype]:
    """{name: dtype} of the speccc dtypes .npy cannot carry (ml_dtypes' types)."""
    from speccc.ir.types import DType
    out = {}
    for d in DType:
        dt = d.numpy
        if dt.type.__module__ == "ml_dtypes":
            out[dt.name] = dt
    return out


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def npz_headers(path) -> dict[str, tuple[tuple, np.dtype]]:
    """{name: (shape, dtype)} of an .npz from the .npy headers alone (no array data is
    decompressed but the small `__speccc_dtypes__` member), so a zip bomb or an array the
    model does not take is refused before it is read. The declared total must fit in
    half this machine's memory. Arrays stored as bits report their real dtype."""
    stored = _stored_headers(path)
    marked = _marked_dtypes(path, stored)
    out = {}
    for name, (shape, dtype) in stored.items():
        if name == DTYPES_ENTRY:
            continue
        if name in marked:
            dtype = marked[name]
        elif dtype.kind == "V":
            raise SpecccError(
                f"array {name!r} is raw bytes ({dtype.str}): .npz cannot carry bfloat16 or "
                f"other ml_dtypes types; store the bits as uint{dtype.itemsize * 8} and name "
                f"the dtype in {DTYPES_ENTRY} (speccc/npzio.py)", location=str(path))
        out[name] = (shape, dtype)
    return out


def _marked_dtypes(path, stored: dict) -> dict[str, np.dtype]:
    """{array: real dtype} from the `__speccc_dtypes__` member, each checked against the
    stored array it names (the unsigned integer of the dtype's width)."""
    if DTYPES_ENTRY not in stored:
        return {}
    shape, dtype = stored[DTYPES_ENTRY]
    where = f"{path}: {DTYPES_ENTRY}"
    if shape != () or dtype.kind != "U" or dtype.itemsize > _DTYPES_MAX_BYTES:
        raise SpecccError(f"expected a 0-d string array, got {dtype.str} {shape}",
                          location=where)
    try:
        with np.load(path, allow_pickle=False) as data:
            table = json.loads(str(data[DTYPES_ENTRY]))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise SpecccError(f"not JSON ({e})", location=where) from None
    if not isinstance(table, dict):
        raise SpecccError("expected a JSON object {array: dtype}", location=where)
    known, out = _bit_dtypes(), {}
    for name, dtype_name in table.items():
        if name not in stored or name == DTYPES_ENTRY:
            raise SpecccError(f"names array {name!r}, which the file does not hold",
                              location=where)
        if dtype_name not in known:
            raise SpecccError(f"array {name!r}: unknown dtype {dtype_name!r} "
                              f"(one of {', '.join(sorted(known))})", location=where)
        real, bits = known[dtype_name], stored[name][1]
        if bits != np.dtype(f"u{real.itemsize}"):
            raise SpecccError(f"array {name!r} is stored as {bits.str}; {dtype_name} "
                              f"needs its bits as uint{real.itemsize * 8}", location=where)
        out[name] = real
    return out


def _stored_headers(path) -> dict[str, tuple[tuple, np.dtype]]:
    """{member: (shape, dtype)} as stored, bounded in total size."""
    check_regular_file(path)
    out, total = {}, 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"member {info.filename!r} is not an .npy array")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in _NPY_HEADERS:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, _, dtype = _NPY_HEADERS[version](f)
                if dtype.hasobject:
                    raise ValueError(f"array {info.filename[:-4]!r} holds Python objects")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                out[info.filename[:-4]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise SpecccError(f"not a .npz file ({e})", location=str(path)) from None
    if total > memory_bytes() // 2:
        raise SpecccError(f"arrays declare {total:,} bytes, more than half this machine's "
                          "memory", location=str(path))
    return out


def load_npz(path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, those stored as bits viewed back as their dtype."""
    heads = npz_headers(path)  # bounded and well-formed before anything is decompressed
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in heads}        # each member read once
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise SpecccError(f"not a .npz file ({e})", location=str(path)) from None
    return {k: a if a.dtype == heads[k][1] else a.view(heads[k][1]) for k, a in arrays.items()}
