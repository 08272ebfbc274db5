"""Bad input: one line `speccc: error: ...` naming the file/op/line, exit 2, nothing
written to -o (and an existing -o left untouched)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from speccc import zoo
from cli_helpers import assert_error
from cli_helpers import invoke as run






@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="prefill"), p)
    return p


def test_not_a_file(tmp_path):
    out = tmp_path / "o.npz"
    assert_error(run("exec", tmp_path, "--inputs", tmp_path / "x.npz", "-o", out), str(tmp_path))
    assert not out.exists()


def test_missing_file(tmp_path):
    assert_error(run("compile", tmp_path / "nope.onnx", "-o", tmp_path / "o"), "nope.onnx",
                 "no such file")
    assert not (tmp_path / "o").exists()


def test_not_onnx(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_text("this is not a protobuf\n" * 10)
    assert_error(run("compile", p, "-o", tmp_path / "o"), "model.onnx")
    assert not (tmp_path / "o").exists()


def test_truncated_protobuf(tmp_path, tiny):
    p = tmp_path / "cut.onnx"
    data = tiny.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    assert_error(run("compile", p, "--bind", "T=1", "-o", tmp_path / "o"), "cut.onnx")
    assert not (tmp_path / "o").exists()


def test_all_unsupported_ops_listed_at_once(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("FooOp", ["a"], ["b"], name="first_bad", domain="acme"),
             helper.make_node("BarOp", ["b"], ["c"], name="second_bad", domain="acme"),
             helper.make_node("BarOp", ["c"], ["y"], name="third_bad", domain="acme")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18),
                                             helper.make_opsetid("acme", 1)])
    p = tmp_path / "bad.onnx"
    onnx.save(model, p)
    r = run("compile", p, "-o", tmp_path / "o")
    assert_error(r, "bad.onnx", "2 unsupported", "acme.FooOp", "first_bad", "acme.BarOp",
                 "second_bad", "third_bad")


def test_unbound_symbolic_dim(tmp_path, tiny):
    r = run("compile", tiny, "-o", tmp_path / "o")
    assert_error(r, "unbound symbolic dim", "T", "--bind")
    assert not (tmp_path / "o").exists()


def _inputs(tmp_path, **arrays):
    p = tmp_path / "in.npz"
    np.savez(p, **arrays)
    return p


def test_inputs_missing_one(tmp_path, tiny):
    ids = np.zeros((1, 4), np.int64)
    out = tmp_path / "o.npz"
    assert_error(run("exec", tiny, "--inputs", _inputs(tmp_path, input_ids=ids), "-o", out),
                 "missing input", "position_ids")
    assert not out.exists()


def test_inputs_wrong_dtype(tmp_path, tiny):
    ids = np.zeros((1, 4), np.int32)
    out = tmp_path / "o.npz"
    out.write_bytes(b"precious")
    r = run("exec", tiny, "--inputs", _inputs(tmp_path, input_ids=ids, position_ids=ids),
            "-o", out)
    assert_error(r, "input_ids", "dtype")
    assert out.read_bytes() == b"precious"


def test_inputs_wrong_shape(tmp_path, tiny):
    ids = np.zeros((1, 4), np.int64)
    pos = np.zeros((1, 5), np.int64)
    assert_error(run("exec", tiny, "--inputs", _inputs(tmp_path, input_ids=ids,
                                                       position_ids=pos),
                     "-o", tmp_path / "o.npz"), "position_ids", "shape")


def test_ir_syntax_error_has_line_and_column(tmp_path):
    p = tmp_path / "bad.ir"
    p.write_text("graph @g(%x: tensor<4xf32>) -> (\"y\": tensor<4xf32>) {\n"
                 "  %0 = neg(%x : tensor<4xf32>\n  return %0\n}\n")
    assert_error(run("opt", p, "-p", "dce"), f"{p}:2:")


def test_ir_undefined_value(tmp_path):
    p = tmp_path / "bad.ir"
    p.write_text("graph @g(%x: tensor<4xf32>) -> (\"y\": tensor<4xf32>) {\n"
                 "  %0 = neg(%zz) : tensor<4xf32>\n  return %0\n}\n")
    assert_error(run("opt", p, "-p", "dce"), f"{p}:2:", "%zz")


def test_unknown_pass_and_option(tmp_path):
    p = tmp_path / "ok.ir"
    p.write_text("graph @g(%x: tensor<4xf32>) -> (\"y\": tensor<4xf32>) {\n"
                 "  %0 = neg(%x) : tensor<4xf32>\n  return %0\n}\n")
    out = tmp_path / "out.ir"
    assert_error(run("opt", p, "-p", "dce,fodl", "-o", out), "unknown pass 'fodl'", "fold")
    assert_error(run("opt", p, "-p", "fold{color=red}", "-o", out), "fold", "color")
    assert_error(run("opt", p, "-p", "dce{", "-o", out), "pipeline")
    assert not out.exists()


def test_debug_shows_traceback(tmp_path):
    r = run("--debug", "opt", tmp_path / "missing.ir", "-p", "dce")
    assert r.exit_code != 0 and r.exception is not None


def test_broken_pipe_exits_quietly():
    """`speccc ops | head -1`: the reader is gone; no error line, exit 0. The pipe's read
    end is closed before speccc writes, so the first write fails (deterministically)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([str(Path(sys.executable).parent / "speccc"), "ops"], stdout=w,
                          stderr=subprocess.PIPE, text=True)
    os.close(w)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
