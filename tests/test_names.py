"""Issue 17 item 2: ONNX names map one to one onto IR names, names speccc cannot carry
are refused, outputs are written under their ONNX names without path meaning."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from speccc.frontend.onnx_import import onnx_name, sanitize_name
from cli_helpers import assert_error, invoke


def _model(inputs, outputs, nodes):
    vi = helper.make_tensor_value_info
    return helper.make_model(
        helper.make_graph(nodes, "g", [vi(n, TensorProto.INT64, [4]) for n in inputs],
                          [vi(n, TensorProto.INT64, [4]) for n in outputs]),
        opset_imports=[helper.make_opsetid("", 18)])


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_sanitize_is_injective_and_ir_safe(a, b):
    import re
    for n in (a, b):
        assert re.fullmatch(r"[A-Za-z0-9_.$-]+", sanitize_name(n)) and not sanitize_name(n).isdigit()
    assert (sanitize_name(a) == sanitize_name(b)) == (a == b)
    assert onnx_name(sanitize_name(a)) == a  # messages can speak the user's names


def test_plain_names_unchanged():
    for n in ("input_ids", "past_key_values.0.key", "x-1", "a_b"):
        assert sanitize_name(n) == n


def test_distinct_inputs_do_not_collide(tmp_path):
    m = _model(["a b", "a_b"], ["y"], [helper.make_node("Sub", ["a b", "a_b"], ["y"])])
    onnx.save(m, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **{"a b": np.array([10, 10, 10, 10]),
                                     "a_b": np.array([1, 2, 3, 4])})
    r = invoke("exec", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "o.npz")["y"].tolist() == [9, 8, 7, 6]


def test_ir_roundtrip_of_escaped_names(tmp_path):
    m = _model(["a b", "$x", "7"], ["y"], [helper.make_node("Sum", ["a b", "$x", "7"], ["y"])])
    onnx.save(m, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", **{"a b": np.ones(4, np.int64), "$x": np.ones(4, np.int64),
                                     "7": np.ones(4, np.int64)})
    r = invoke("exec", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz",
               "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "o.npz")["y"].tolist() == [3] * 4


@pytest.mark.parametrize("name,needles", [("y\0z", ["control character"]),
                                          ("../../x", ["../../x", "path"]),
                                          ("a/b", ["a/b", "path"])])
def test_unrepresentable_output_name_refused(tmp_path, name, needles):
    """A NUL was cut short; `../../x` became that member path in the .npz."""
    m = _model(["x"], [name], [helper.make_node("Neg", ["x"], [name])])
    onnx.save(m, tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", x=np.ones(4, np.int64))
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz",
                        "-o", out), *needles)
    assert not out.exists()


def test_non_utf8_input_name_refused(tmp_path):
    m = _model(["ab"], ["y"], [helper.make_node("Neg", ["ab"], ["y"])])
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString().replace(b"ab", b"a\xff"))
    assert_error(invoke("compile", tmp_path / "m.onnx", "-o", tmp_path / "o"), "UTF-8")
    assert not (tmp_path / "o").exists()
