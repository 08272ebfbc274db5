"""bfloat16 through .npz (speccc/npzio.py): .npy cannot name ml_dtypes' types, so their
bits are stored as unsigned integers and `__speccc_dtypes__` names the dtype. Checked
through the CLI: zoo --dtype bf16, inputs, exec --inputs."""
from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest
from cli_helpers import assert_error, invoke

from speccc.introspect import example_feeds
from speccc.npzio import DTYPES_ENTRY, load_npz, save_npz_atomic

BF16 = np.dtype(ml_dtypes.bfloat16)
BIND = "T=2,P=3"


@pytest.fixture(scope="module")
def bf16_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("bf16") / "bf.onnx"
    r = invoke("zoo", "llama-tiny", "-o", path, "--dtype", "bf16")
    assert r.exit_code == 0, r.output
    return path


@pytest.fixture(scope="module")
def bf16_inputs(bf16_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("bf16in") / "in.npz"
    r = invoke("inputs", bf16_model, "--bind", BIND, "-o", path, "--seed", 5)
    assert r.exit_code == 0, r.output
    return path


def test_inputs_of_a_bf16_model_read_back_exactly(bf16_model, bf16_inputs):
    expected = example_feeds(bf16_model, {"T": 2, "P": 3}, 5)
    got = load_npz(bf16_inputs)
    assert set(got) == set(expected)
    kv = [k for k in expected if k.startswith("past_key_values")]
    assert kv and all(expected[k].dtype == BF16 for k in kv)
    for k, v in expected.items():
        assert got[k].dtype == v.dtype, k
        assert got[k].tobytes() == np.ascontiguousarray(v).tobytes(), k   # bit for bit
    with np.load(bf16_inputs) as plain:             # what numpy alone sees
        assert plain[kv[0]].dtype == np.uint16
        assert json.loads(str(plain[DTYPES_ENTRY])) == {k: "bfloat16" for k in kv}


def test_exec_takes_bf16_inputs_and_writes_bf16_outputs(bf16_model, bf16_inputs, tmp_path):
    out = tmp_path / "out.npz"
    r = invoke("exec", bf16_model, "--inputs", bf16_inputs, "-o", out)
    assert r.exit_code == 0, r.output
    feeds, outputs = load_npz(bf16_inputs), load_npz(out)
    assert outputs["logits"].dtype == BF16 and outputs["logits"].shape[1] == 2
    assert np.isfinite(outputs["logits"].astype(np.float32)).all()
    # present = concat(past, new): the past rows come back bit for bit
    past, present = feeds["past_key_values.0.key"], outputs["present.0.key"]
    assert present.dtype == BF16 and present.shape[2] == 5
    assert present[:, :, :3].tobytes() == past.tobytes()


def test_a_file_written_with_numpy_alone_is_read(bf16_model, bf16_inputs, tmp_path):
    """The recipe in npzio's docstring: bits as uint16 plus the dtype member."""
    feeds = load_npz(bf16_inputs)
    bits = {k: (v.view(np.uint16) if v.dtype == BF16 else v) for k, v in feeds.items()}
    marker = json.dumps({k: "bfloat16" for k, v in feeds.items() if v.dtype == BF16})
    mine = tmp_path / "mine.npz"
    np.savez(mine, **bits, **{DTYPES_ENTRY: marker})
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke("exec", bf16_model, "--inputs", mine, "-o", a).exit_code == 0
    assert invoke("exec", bf16_model, "--inputs", bf16_inputs, "-o", b).exit_code == 0
    assert all(x.tobytes() == load_npz(b)[k].tobytes() for k, x in load_npz(a).items())


def test_plain_npz_round_trips_unchanged(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([[1, 2]])}
    path = tmp_path / "plain.npz"
    save_npz_atomic(path, arrays)
    with np.load(path) as plain:
        assert sorted(plain.files) == ["ids", "x"]       # no dtype member when not needed
    got = load_npz(path)
    assert all(got[k].dtype == v.dtype and np.array_equal(got[k], v) for k, v in arrays.items())


def test_every_ml_dtypes_type_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 256 ** dt.itemsize, (3, 4), dtype=f"u{dt.itemsize}")
              .view(dt) for name, dt in
              [("bf", BF16), ("f8", np.dtype(ml_dtypes.float8_e4m3fn)),
               ("i4", np.dtype(ml_dtypes.int4))]}
    path = tmp_path / "narrow.npz"
    save_npz_atomic(path, arrays)
    got = load_npz(path)
    assert all(got[k].dtype == v.dtype and got[k].tobytes() == v.tobytes()
               for k, v in arrays.items())


def _write(path, marker=None, **arrays):
    extra = {} if marker is None else {DTYPES_ENTRY: marker}
    np.savez(path, **arrays, **extra)
    return path


@pytest.mark.parametrize("arrays, marker, needles", [
    ({"past_key_values.0.key": np.zeros((1, 2, 3, 16), BF16)}, None,
     ["past_key_values.0.key", "raw bytes", DTYPES_ENTRY]),
    ({"k": np.zeros(4, np.uint16)}, json.dumps({"k": "bfloat17"}), ["unknown dtype", "bfloat17"]),
    ({"k": np.zeros(4, np.uint8)}, json.dumps({"k": "bfloat16"}), ["'k'", "uint16"]),
    ({"k": np.zeros(4, np.uint16)}, json.dumps({"gone": "bfloat16"}), ["'gone'"]),
    ({"k": np.zeros(4, np.uint16)}, "{not json", [DTYPES_ENTRY, "not JSON"]),
    ({"k": np.zeros(4, np.uint16)}, json.dumps(["k"]), [DTYPES_ENTRY, "JSON object"]),
])
def test_bad_dtype_entries_are_one_line_errors(bf16_model, tmp_path, arrays, marker, needles):
    path = _write(tmp_path / "bad.npz", marker, **arrays)
    r = invoke("exec", bf16_model, "--inputs", path, "-o", tmp_path / "out.npz")
    assert_error(r, "bad.npz", *needles)
    assert not (tmp_path / "out.npz").exists()


def test_an_output_named_like_the_dtype_member_is_refused(tmp_path):
    from speccc.errors import SpecccError
    with pytest.raises(SpecccError, match=DTYPES_ENTRY):
        save_npz_atomic(tmp_path / "o.npz", {DTYPES_ENTRY: np.zeros(1)})
    assert not (tmp_path / "o.npz").exists()
