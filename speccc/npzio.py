""".npz files: inputs read only after their .npy headers were checked (nothing is
decompressed before its name, shape and total size are known), outputs written
atomically under their ONNX names with no path meaning."""
from __future__ import annotations

import io
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
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def npz_headers(path) -> dict[str, tuple[tuple, np.dtype]]:
    """{name: (shape, dtype)} of an .npz from the .npy headers alone (no array data is
    decompressed), so a zip bomb or an array the model does not take is refused before
    it is read. The declared total must fit in half this machine's memory."""
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
    npz_headers(path)  # bounded and well-formed before anything is decompressed
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise SpecccError(f"not a .npz file ({e})", location=str(path)) from None
