"""Issue 17 item 5: every example of the issue is one line `speccc: error: ...`, exit 2,
nothing written, in a few seconds (non-UTF-8, markup in names, deep nesting, numeric
edge cases, option ranges, malformed traces, non-regular inputs)."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from speccc import zoo
from cli_helpers import assert_error, invoke

PRESET = "hbm-pim"


@pytest.fixture(scope="module")
def m(decode_pair):
    """draft.onnx, target.onnx and tiny.onnx (the llama-tiny decode model) in one folder."""
    if not (decode_pair / "tiny.onnx").exists():
        zoo.save(zoo.build("llama-tiny", mode="decode"), decode_pair / "tiny.onnx")
    return decode_pair


def _files(path):
    return sorted(p.name for p in path.iterdir())


def _ok_listing(tmp_path):
    p = tmp_path / "ok.pim"
    p.write_text(".hw aim-gddr6\nACT ch=0 bank=0 row=0\nPRE ch=0 bank=0\n")
    return p


# ---------------------------------------------------------------- non-UTF-8 -------
@pytest.mark.parametrize("cmd", [["opt", "{f}"], ["asm", "{f}"], ["hw", "show", "{f}"],
                                 ["compile", "{m}", "--hw", "{f}", "-o", "{o}"]])
def test_non_utf8_files(tmp_path, m, cmd):
    f = tmp_path / ("bad.toml" if "hw" in cmd or "--hw" in cmd else "bad.txt")
    f.write_bytes(b"name = '\xff\xfe'\n")
    args = [a.format(f=f, m=m / "tiny.onnx", o=tmp_path / "o") for a in cmd]
    assert_error(invoke(*args), "UTF-8")
    assert not (tmp_path / "o").exists()


def test_toml_with_bom_accepted(tmp_path):
    from importlib import resources
    text = (resources.files("speccc.hw") / "presets" / f"{PRESET}.toml").read_text()
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert invoke("hw", "show", tmp_path / "bom.toml", "--json").exit_code == 0


# ---------------------------------------------------------------- markup ----------
@pytest.mark.parametrize("name", ["[/x].onnx", "[red]x[/red].onnx", "[bold]y.onnx"])
def test_markup_in_paths_printed_literally(tmp_path, m, name):
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((m / "tiny.onnx").read_bytes())
    r = invoke("compile", target, "--bind", "T=1,P=4", "-o", tmp_path / "o")
    assert r.exit_code == 0, r.output
    # printed as given (the table title may wrap), not eaten as markup
    assert "".join(str(target).split()) in "".join(r.output.split())


def test_markup_in_preset_name(tmp_path):
    from importlib import resources
    text = (resources.files("speccc.hw") / "presets" / f"{PRESET}.toml").read_text()
    text = text.replace(f'name = "{PRESET}"', 'name = "[/x][red]mine"', 1)
    (tmp_path / "m.toml").write_text(text)
    r = invoke("hw", "show", tmp_path / "m.toml")
    assert r.exit_code == 0, r.output
    assert "[/x][red]mine" in r.output


# ---------------------------------------------------------------- nesting ---------
def test_deep_nesting_ir(tmp_path):
    (tmp_path / "d.ir").write_text("graph @g() -> () attributes {a = " + "[" * 1000 + "]" * 1000
                                   + "} {\n  return\n}\n")
    assert_error(invoke("opt", tmp_path / "d.ir", "-o", tmp_path / "o.ir"), "d.ir:1:", "nested")
    assert not (tmp_path / "o.ir").exists()


def test_deep_nesting_listing(tmp_path):
    (tmp_path / "d.pim").write_text(".hw aim-gddr6\n" + "loop 2 {\n" * 1000 + "}\n" * 1000)
    assert_error(invoke("asm", tmp_path / "d.pim"), "d.pim:", "nested")


def test_deep_nesting_trace(tmp_path):
    (tmp_path / "t.json").write_text('{"traceEvents": ' + "[" * 5000 + "]" * 5000 + "}")
    assert_error(invoke("plot", tmp_path / "t.json", "-o", tmp_path / "p.png"), "nested")
    assert not (tmp_path / "p.png").exists()


# ---------------------------------------------------------------- numbers ---------
@pytest.mark.parametrize("value,needle", [("nan", "holds integers"), ("1e309", "holds integers"),
                                          ("1.5", "holds integers"),
                                          ("123456789012345678901", "64 bits")])
def test_ir_integer_constants(tmp_path, value, needle):
    (tmp_path / "c.ir").write_text("graph @g() -> () {\n  %0 = const() {value = dense<tensor<1xi64>"
                                   f" [{value}]>}} : tensor<1xi64>\n  return\n}}\n")
    assert_error(invoke("opt", tmp_path / "c.ir"), "c.ir:2:", needle)


def test_ir_i8_overflow(tmp_path):
    (tmp_path / "c.ir").write_text("graph @g() -> () {\n  %0 = const() {value = dense<tensor<1xi8>"
                                   " [300]>} : tensor<1xi8>\n  return\n}\n")
    assert_error(invoke("opt", tmp_path / "c.ir"), "300", "i8")


def test_toml_huge_integer(tmp_path):
    from importlib import resources
    text = (resources.files("speccc.hw") / "presets" / f"{PRESET}.toml").read_text()
    import re
    text = re.sub(r"(?m)^channels = \d+", "channels = 100000000000000000000", text)
    (tmp_path / "h.toml").write_text(text)
    assert_error(invoke("hw", "show", tmp_path / "h.toml"), "channels")


def test_zero_size_weight(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 0])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [0, 4], [])
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                                "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "z.onnx")
    r = invoke("compile", tmp_path / "z.onnx", "-o", tmp_path / "o", "--partition", "all-npu")
    assert r.exit_code in (0, 2), r.output
    assert "Traceback" not in r.output


def test_gather_index_out_of_range(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 2])
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Gather", ["x", "i"], ["y"])],
                                                  "g", [x, i], [y]),
                                opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "g.onnx")
    np.savez(tmp_path / "in.npz", x=np.ones((3, 2), np.float32), i=np.array([0, 7]))
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", tmp_path / "g.onnx", "--inputs", tmp_path / "in.npz", "-o", out),
                 "Gather", "out of range")
    assert not out.exists()


def test_token_id_out_of_vocab(m):
    assert_error(invoke("run", "--target", m / "target.onnx", "--draft", m / "draft.onnx",
                        "--prompt-ids", "999999", "--max-new-tokens", "2"), "vocabulary")


def test_opset_99(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                                  [x], [helper.make_tensor_value_info(
                                                      "y", TensorProto.FLOAT, [2])]),
                                opset_imports=[helper.make_opsetid("", 99)]), tmp_path / "o.onnx")
    assert_error(invoke("compile", tmp_path / "o.onnx", "-o", tmp_path / "o"), "opset 99")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- options ---------
@pytest.mark.parametrize("args,needle", [
    (["--bind", "T=0,P=0"], "--bind T"),
    (["--bind", "T=1,P=4", "--print-ir-after", "nope"], "nope"),
    (["--bind", "T=99999999999999999999"], "--bind"),
])
def test_compile_option_values(tmp_path, m, args, needle):
    assert_error(invoke("compile", m / "tiny.onnx", *args, "-o", tmp_path / "o"), needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,needle", [
    (["--temperature", "nan"], "--temperature"), (["--batch", "1000000"], "--batch"),
    (["--gamma", "1000000"], "--gamma"), (["--acceptance", "nan"], "--acceptance"),
    (["--p-accept", "inf"], "--p-accept"),
])
def test_run_option_values(tmp_path, m, args, needle):
    out = tmp_path / "t.json"
    assert_error(invoke("run", "--target", m / "target.onnx", "--draft", m / "draft.onnx",
                        *args, "--trace", out), needle)
    assert not out.exists()


def test_zoo_layers_limit(tmp_path):
    assert_error(invoke("zoo", "llama2-7b", "--layers", "100000", "-o", tmp_path / "z.onnx"),
                 "layers")
    assert_error(invoke("zoo", "llama-tiny", "--pair", tmp_path / "p", "--residual-scale", "nan"),
                 "residual_scale")
    assert _files(tmp_path) == []


def test_plot_title_with_dollars(tmp_path, m):
    t = tmp_path / "t.json"
    assert invoke("run", "--target", m / "target.onnx", "--draft", m / "draft.onnx",
                  "--max-new-tokens", "2", "--trace", t).exit_code == 0
    r = invoke("plot", t, "-o", tmp_path / "p.png", "--title", "$x$ $")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("text", ["{", '{"traceEvents": 3}', '{"traceEvents": [{"ph": "X"}]}',
                                  '[1, 2]', '{"traceEvents": [{"ph": "X", "tid": 1, "ts": "a"}]}'])
def test_malformed_trace(tmp_path, text):
    (tmp_path / "t.json").write_text(text)
    assert_error(invoke("plot", tmp_path / "t.json", "-o", tmp_path / "p.png"))
    assert not (tmp_path / "p.png").exists()


# ---------------------------------------------------------------- input files -----
def test_empty_inputs_file(tmp_path, m):
    (tmp_path / "in.npz").write_bytes(b"")
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", m / "tiny.onnx", "--inputs", tmp_path / "in.npz", "-o", out),
                 "in.npz")
    assert not out.exists()


def test_json_as_model(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    assert_error(invoke("compile", tmp_path / "m.json", "-o", tmp_path / "o"), "m.json")


def test_folder_where_file_expected(tmp_path):
    assert_error(invoke("asm", tmp_path), str(tmp_path))
    assert_error(invoke("opt", tmp_path), str(tmp_path))


@pytest.mark.parametrize("cmd", [["asm", "{f}"], ["opt", "{f}"], ["plot", "{f}", "-o", "{o}"],
                                 ["hw", "show", "{f}"]])
def test_fifo_as_input_does_not_hang(tmp_path, cmd):
    fifo = tmp_path / "in.toml"
    os.mkfifo(fifo)
    args = [a.format(f=fifo, o=tmp_path / "o.png") for a in cmd]
    assert_error(invoke(*args), "FIFO")


def test_listing_hw_line_cannot_open_paths(tmp_path):
    (tmp_path / "p.pim").write_text(".hw ../../../../etc/passwd\nACT ch=0 bank=0 row=0\n")
    assert_error(invoke("asm", tmp_path / "p.pim", "--run"), ".hw", "--hw")


def test_zip_bomb_inputs_not_decompressed(tmp_path, m):
    """An array the model does not take is refused from its header, before reading."""
    import zipfile
    with zipfile.ZipFile(tmp_path / "in.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("junk.npy", "w", force_zip64=True) as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 28,)}
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(1 << 20)
            for _ in range(64):  # 64 MiB of zeros, a few KB on disk; the header says 1 GiB
                f.write(chunk)
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", m / "tiny.onnx", "--inputs", tmp_path / "in.npz", "-o", out),
                 "junk")
    assert not out.exists()


def test_split_without_sizes_or_count_opset18(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 2]) for n in "ab"]
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Split", ["x"], ["a", "b"])],
                                                  "g", [x], outs),
                                opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "s.onnx")
    np.savez(tmp_path / "in.npz", x=np.ones((4, 2), np.float32))
    out = tmp_path / "o.npz"
    assert_error(invoke("exec", tmp_path / "s.onnx", "--inputs", tmp_path / "in.npz", "-o", out),
                 "Split", "num_outputs")
    assert not out.exists()


def test_huge_energy_never_reaches_report_json(tmp_path, m):
    from importlib import resources
    text = (resources.files("speccc.hw") / "presets" / f"{PRESET}.toml").read_text()
    import re
    (tmp_path / "e.toml").write_text(re.sub(r"(?m)^act_pj = \S+", "act_pj = 1e308", text))
    assert_error(invoke("compile", m / "tiny.onnx", "--bind", "T=1,P=4", "--hw",
                        tmp_path / "e.toml", "-o", tmp_path / "o"), "act_pj")
    assert not (tmp_path / "o").exists()


def test_write_tree_refuses_non_finite_json(tmp_path):
    from speccc.errors import SpecccError
    from speccc.fileio import write_tree
    with pytest.raises(SpecccError, match="Infinity"):
        write_tree(tmp_path / "o", {"report.json": '{"x": Infinity}'})
    assert not (tmp_path / "o").exists()


def test_asm_dev_zero_refused():
    """Read-only use of a device (nothing is written): refused before reading."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    assert_error(invoke("asm", "/dev/zero"), "character device")
