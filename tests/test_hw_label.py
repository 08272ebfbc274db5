"""A hardware file copied from a preset (same `name = ...` inside) is reported as the file,
never as the preset (issue 16 item 8)."""
from __future__ import annotations

import json
import shutil
from importlib import resources

from cli_helpers import assert_error, invoke

from speccc.hw import load_hw


def _copy(tmp_path, preset: str, name: str = "my.toml"):
    path = tmp_path / name
    shutil.copy(resources.files("speccc.hw") / "presets" / f"{preset}.toml", path)
    return path


def test_label_names_the_file_and_its_origin(tmp_path):
    assert load_hw("aim-gddr6").label == "aim-gddr6"
    path = _copy(tmp_path, "aim-gddr6")
    assert load_hw(path).label == "my.toml (from aim-gddr6)"
    assert load_hw(str(path)).label == "my.toml (from aim-gddr6)"


def test_compile_report_and_hw_show_name_the_file(tmp_path, decode_pair):
    path = _copy(tmp_path, "hbm3-pim-x8")
    out = tmp_path / "out"
    res = invoke("compile", decode_pair / "target.onnx", "--bind", "T=1,P=16", "-o", out,
                 "--hw", path)
    assert res.exit_code == 0, res.output
    assert "my.toml (from hbm3-pim-x8)" in " ".join(res.output.split())
    assert json.loads((out / "report.json").read_text())["hw"] == "my.toml (from hbm3-pim-x8)"
    shown = invoke("hw", "show", path)
    assert shown.output.startswith("my.toml (from hbm3-pim-x8):")


def test_capacity_error_names_the_file(tmp_path):
    path = _copy(tmp_path, "hbm-pim", "small.toml")
    from speccc import zoo
    for name, model in (("t.onnx", "llama2-7b"), ("d.onnx", "llama-68m")):
        zoo.save(zoo.build(model, mode="decode", dtype="float16", weights=False), tmp_path / name)
    res = invoke("run", "--target", tmp_path / "t.onnx", "--draft", tmp_path / "d.onnx",
                 "--acceptance", "0.8", "--hw", path)
    assert_error(res, "does not fit small.toml (from hbm-pim)")
