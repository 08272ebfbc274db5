"""Issue 17 item 4: work is estimated and bounded before it starts (listing sizes, option
ranges, input shapes), each refusal a one-line error in well under a second of work."""
from __future__ import annotations

import time

import numpy as np
import pytest

from speccc import zoo
from speccc.targets.pim.listing import parse, work
from cli_helpers import assert_error, invoke

BIG = ".hw aim-gddr6\nloop a 1000000000000 {\n  ACT ch=0 bank=0 row=0\n  PRE ch=0 bank=0\n}\n"


def test_work_counts_empty_loops_and_nesting():
    assert work(parse("loop 10000000 {\n}\n")) == 10_000_000
    assert work(parse(BIG)) == 3 * 10**12
    assert work(parse("loop 3 {\n loop 4 {\n  ACT ch=0 bank=0 row=0\n }\n}\n")) == 3 * (1 + 4 * 2)


@pytest.mark.parametrize("text,flags,needle", [
    (BIG, ["--run"], "3,000,000,000,000"),
    (".hw aim-gddr6\nloop 10000000 {\n}\n", ["--check"], "10,000,000"),
    (BIG.replace("1000000000000", "2000"), ["--run", "--max-commands", "100"], "6,000"),
])
def test_listing_bounded_before_running(tmp_path, text, flags, needle):
    (tmp_path / "l.pim").write_text(text)
    t0 = time.perf_counter()
    assert_error(invoke("asm", tmp_path / "l.pim", *flags, "--trace", tmp_path / "t.pim"),
                 needle, "limit")
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "t.pim").exists()


def test_max_commands_raises_the_limit(tmp_path):
    (tmp_path / "l.pim").write_text(BIG.replace("1000000000000", "20"))
    assert invoke("asm", tmp_path / "l.pim", "--run", "--max-commands", "60").exit_code == 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


@pytest.mark.parametrize("on", ["reference", "emulator"])
def test_exec_sequence_length_zero(tmp_path, tiny, on):
    d = {"input_ids": np.zeros((1, 0), np.int64), "position_ids": np.zeros((1, 0), np.int64)}
    for i in range(2):
        for k in ("key", "value"):
            d[f"past_key_values.{i}.{k}"] = np.zeros((1, 2, 4, 16), np.float32)
    np.savez(tmp_path / "in.npz", **d)
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", tiny, "--inputs", tmp_path / "in.npz", "-o", out, "--on", on),
                 "T must be")
    assert not out.exists()


def test_input_larger_than_declared_refused_from_header(tmp_path):
    """A declared [2] input given [1<<27] floats: refused from the .npy header."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                                  [x], [y]),
                                opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "m.onnx")
    import zipfile
    with zipfile.ZipFile(tmp_path / "in.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 27,)})
            f.write(bytes(1 << 20))  # the rest never gets read
    assert_error(invoke("exec", tmp_path / "m.onnx", "--inputs", tmp_path / "in.npz",
                        "-o", tmp_path / "o.npz"), "shape")
