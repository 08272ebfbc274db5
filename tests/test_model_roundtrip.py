"""Every IR produced from the zoo and the Hugging Face exports prints and parses back:
print(parse(print(m))) == print(m) and parse(print(m)) is structurally equal to m, both
straight after import and after the canonical pipeline. Decode models also have their
KV-cache pairs recognized structurally."""
from __future__ import annotations

import pytest

from speccc import zoo
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.ir.equality import modules_equal
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.ir.verifier import verify
from speccc.pipeline import run_canonical

TINY = [(n, mode) for n in ("llama-tiny", "gpt2-tiny", "opt-tiny") for mode in ("prefill", "decode")]
BIG = {"llama2-13b", "llama2-70b", "opt-13b"}  # same builders as the 7B; seconds each
SHAPES_ONLY = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n
               for n in zoo.list_models() if not zoo.get_spec(n).weights]


def assert_roundtrip(module):
    text = print_module(module)
    again = parse_module(text)
    verify(again)
    assert modules_equal(module, again)
    assert print_module(again) == text


def check_model(path, shapes_only: bool, decode: bool, layers: int):
    module = import_model(path, ImportOptions(shapes_only=shapes_only))
    assert_roundtrip(module)
    run_canonical(module)
    assert_roundtrip(module)
    kv = module.graphs["target"].attrs.get("kv_cache", [])
    if decode:
        assert len(kv) == 2 * layers, kv
        for past, present, axis in kv:
            assert past.startswith("past_key_values.") and present.startswith("present.")
            assert axis == 2
    else:
        assert kv == []


@pytest.mark.parametrize("name,mode", TINY)
def test_zoo_tiny(tmp_path, name, mode):
    p = tmp_path / "m.onnx"
    zoo.save(zoo.build(name, mode=mode), p)
    check_model(p, False, mode == "decode", zoo.get_spec(name).layers)


@pytest.mark.parametrize("name", SHAPES_ONLY)
def test_zoo_shapes_only(tmp_path, name):
    p = tmp_path / "m.onnx"
    zoo.save(zoo.build(name), p)  # presets default to decode mode
    spec = zoo.get_spec(name)
    check_model(p, True, spec.mode == "decode", spec.layers)


@pytest.mark.export
@pytest.mark.parametrize("family", ["gpt2", "opt", "llama", "qwen2", "mistral", "phi3"])
@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_hf_exports(hf_export, family, mode):
    check_model(hf_export(family, mode), False, mode == "decode", 2)
