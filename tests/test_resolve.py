"""One model resolver (speccc.zoo.resolve) behind compile, run, exec and dse."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from speccc import zoo
from speccc.errors import SpecccError
from speccc.zoo.resolve import ZooModel, resolve, resolve_path
from cli_helpers import assert_error
from cli_helpers import invoke as run


def test_resolve_kinds(tmp_path):
    assert resolve(None) is None
    assert resolve("llama2-7b") == ZooModel("llama2-7b")
    assert resolve("llama2-7b").shapes_only and not resolve("llama-tiny").shapes_only
    f = tmp_path / "llama2-7b"             # an existing file wins over the zoo name
    f.write_bytes(b"")
    assert resolve(str(f)) == str(f)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert resolve("llama2-7b") == "llama2-7b"
    finally:
        os.chdir(cwd)


def test_unknown_name_lists_close_matches():
    with pytest.raises(SpecccError, match=r"llama2-7x: no such file or zoo model; did you "
                       r"mean llama2-7b"):
        resolve("llama2-7x")
    with pytest.raises(SpecccError) as e:
        resolve("zzzz.onnx")
    assert "did you mean" not in str(e.value) and "speccc zoo --list" in str(e.value)


@pytest.mark.parametrize("argv", [
    ["compile", "opt-6.7c", "-o", "{tmp}/o"],
    ["compile", "llama-tiny", "--draft", "llama-6m", "-o", "{tmp}/o"],
    ["exec", "llama2-7bb", "--inputs", "{tmp}/x.npz", "-o", "{tmp}/o.npz"],
    ["run", "--target", "opt-125", "--schedule", "none", "--acceptance", "0.8"],
    ["dse", "--target", "llama2-7b", "--draft", "lama-68m", "--acceptance", "0.8",
     "-o", "{tmp}/d"],
])
def test_cli_unknown_model_one_line(tmp_path, argv):
    r = run(*[a.format(tmp=tmp_path) for a in argv])
    assert_error(r, "no such file or zoo model", "did you mean")
    assert not any(tmp_path.iterdir())


def test_help_says_onnx_file_or_zoo_name():
    for cmd, opt in (("compile", "--draft"), ("run", "--target"), ("run", "--draft"),
                     ("dse", "--target"), ("dse", "--draft")):
        text = " ".join(run(cmd, "--help").output.split())
        assert "ONNX file or zoo name" in text, (cmd, opt)
    for cmd in ("compile", "exec"):
        assert "ONNX file or zoo name" in " ".join(run(cmd, "--help").output.split())


def test_compile_zoo_names_in_memory(tmp_path):
    out = tmp_path / "o"
    r = run("compile", "llama2-7b", "--draft", "llama-68m", "--bind", "T=1,P=64",
            "--hw", "aim-gddr6", "-o", out, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == "llama2-7b" and rep["draft"] == "llama-68m"
    assert set(rep["graphs"]) == {"target", "draft"}
    assert (out / "ir" / "module.ir").is_file()


def test_exec_zoo_name_keeps_weights(tmp_path):
    """llama-tiny by name computes what the same model saved to a file computes."""
    feeds = zoo.example_inputs("llama-tiny", mode="decode", T=2, P=3, seed=1)
    np.savez(tmp_path / "in.npz", **feeds)
    f = tmp_path / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), f)
    for model, out in (("llama-tiny", "a.npz"), (f, "b.npz")):
        r = run("exec", model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / out)
        assert r.exit_code == 0, r.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) > 1
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    assert np.abs(a["logits"]).max() > 0


def test_run_zoo_names_match_files(tmp_path):
    """`run` on zoo names gives the same report as on files built from those names."""
    common = ["--schedule", "serial", "--acceptance", "0.8", "--max-new-tokens", "8",
              "--hw", "aim-gddr6", "--json"]
    by_name = run("run", "--target", "llama2-7b", "--draft", "llama-68m", *common)
    assert by_name.exit_code == 0, by_name.output
    paths = [resolve_path(n) for n in ("llama2-7b", "llama-68m")]
    assert all(os.path.isfile(p) for p in paths)
    by_file = run("run", "--target", paths[0], "--draft", paths[1], *common)
    assert by_file.exit_code == 0, by_file.output
    a, b = json.loads(by_name.output), json.loads(by_file.output)
    for k in ("tokens_per_s", "itl_ms", "energy_per_token_mj"):
        assert a[k] == b[k], k


def test_run_zoo_name_without_tokenizer():
    r = run("run", "--target", "llama2-7b", "--schedule", "none", "--prompt", "hi")
    assert_error(r, "llama2-7b has no tokenizer")


def test_dse_resolve_model_still_importable():
    from speccc.dse.evaluate import resolve_model
    p = resolve_model("llama-68m")
    assert p.endswith(".onnx") and os.path.isfile(p)
    assert zoo.is_shapes_only(__import__("onnx").load(p, load_external_data=False))


def test_zoo_list_family_labels():
    rows = {ln.split()[0]: ln.split()[1] for ln in run("zoo", "--list").output.splitlines()}
    assert rows["opt-125m"] == "opt" and rows["opt-175b"] == "opt"
    assert rows["gpt2-tiny"] == "gpt2" and rows["llama3.1-70b"] == "llama"
