"""Issue 17 item 3: external-data paths are checked by speccc itself (inside the model
folder after resolving symlinks, a regular file, exactly the declared tensor's bytes),
so these pass whichever onnx version is installed. `exec` must never copy a file from
outside the model folder into its output."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from cli_helpers import assert_error, invoke


def _model(folder, location, dims=(4,), length=None, offset=None):
    """y = x + w, w stored externally at `location`."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=list(dims))
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = w.external_data.add()
            e.key, e.value = k, str(v)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(dims))
    m = helper.make_model(helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])],
                                            "g", [x], [y], [w]),
                          opset_imports=[helper.make_opsetid("", 18)])
    folder.mkdir(exist_ok=True)
    onnx.save(m, folder / "m.onnx")
    np.savez(folder / "in.npz", x=np.zeros(dims, np.float32))
    return folder / "m.onnx"


def _exec(tmp_path, model):
    out = tmp_path / "out.npz"
    r = invoke("exec", model, "--inputs", model.parent / "in.npz", "-o", out)
    return r, out


def test_good_external_data(tmp_path):
    m = _model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    r, out = _exec(tmp_path, m)
    assert r.exit_code == 0, r.output
    assert np.load(out)["y"].tolist() == [0, 1, 2, 3]


def test_symlink_escape_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root" * 4)
    m = _model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").symlink_to(secret)
    r, out = _exec(tmp_path, m)
    assert_error(r, "outside the model's folder")
    assert not out.exists()


@pytest.mark.parametrize("location", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt"])
def test_path_escape_refused(tmp_path, location):
    (tmp_path / "secret.txt").write_bytes(b"s" * 16)
    m = _model(tmp_path / "m", location)
    r, out = _exec(tmp_path, m)
    assert_error(r, "w")
    assert not out.exists()


def test_fifo_refused(tmp_path):
    m = _model(tmp_path / "m", "w.bin")
    os.mkfifo(tmp_path / "m" / "w.bin")
    r, out = _exec(tmp_path, m)
    assert_error(r, "not a regular file")
    assert not out.exists()


def test_length_mismatch_and_short_file(tmp_path):
    m = _model(tmp_path / "m", "w.bin", length=8)
    (tmp_path / "m" / "w.bin").write_bytes(b"\0" * 64)
    assert_error(_exec(tmp_path, m)[0], "length 8")
    m = _model(tmp_path / "m2", "w.bin", offset=60)
    (tmp_path / "m2" / "w.bin").write_bytes(b"\0" * 64)
    assert_error(_exec(tmp_path, m)[0], "has 64 bytes")


def test_huge_sparse_external_file_not_read(tmp_path):
    """A tiny ONNX declaring a 256 GiB weight over a sparse file: refused, not allocated."""
    dims = (1 << 36,)
    m = _model(tmp_path / "m", "w.bin", dims=(4,))
    model = onnx.load(m, load_external_data=False)
    model.graph.initializer[0].dims[:] = dims
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # x[1] + w[2^36]
    model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = dims[0]
    onnx.save(model, m)
    np.savez(m.parent / "in.npz", x=np.zeros(1, np.float32))
    with open(m.parent / "w.bin", "wb") as f:
        f.truncate(4 << 36)
    r, out = _exec(tmp_path, m)
    assert_error(r, "memory")
    assert not out.exists()
