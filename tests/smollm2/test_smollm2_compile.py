"""The SmolLM2 pair through the compiler: `speccc compile` emits listings and a report,
and `speccc exec --on emulator` on one decode step (P=16, KV from onnxruntime) matches the
reference interpreter within the precision's tolerance."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import invoke as run
from gguf_helpers import needs_wheel
from speccc.zoo import smollm2

pytestmark = needs_wheel
PROMPT = [504, 3575, 282, 4649, 314, 7042, 30, 198, 198, 504, 2988, 314, 42, 216, 34, 32]


def test_compile_pair(tmp_path):
    out = tmp_path / "out"
    r = run("compile", smollm2.model_path("smollm2"), "--draft",
            smollm2.model_path("smollm2-int4"), "--bind", "T=1,P=16", "--hw", "hbm-pim",
            "-o", out, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["listings"] > 400 and rep["serial_ns"] > 0
    assert len(list((out / "pim").glob("*.pim"))) == rep["listings"]
    assert (out / "report.json").is_file()


def decode_step_inputs(path, tmp_path):
    """Feeds of one decode step after PROMPT: the KV cache comes from onnxruntime."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = {"input_ids": np.array([PROMPT]), "position_ids": np.arange(len(PROMPT))[None]}
    for i in range(30):
        for kv in ("key", "value"):
            f[f"past_key_values.{i}.{kv}"] = np.zeros((1, 3, 0, 64), np.float32)
    res = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, f)))
    step = {"input_ids": np.array([[42]]), "position_ids": np.array([[len(PROMPT)]])}
    step |= {k.replace("present", "past_key_values"): v for k, v in res.items()
             if k.startswith("present")}
    np.savez(tmp_path / "in.npz", **step)
    return tmp_path / "in.npz"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2", "smollm2-int4"])
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-5), ("fp16", 1e-2)])
def test_exec_emulator_decode_step(tmp_path, name, precision, tol):
    path = smollm2.model_path(name)
    feeds = decode_step_inputs(path, tmp_path)
    outs = {}
    for backend in ("reference", "emulator"):
        o = tmp_path / f"{backend}.npz"
        r = run("exec", path, "--inputs", feeds, "-o", o, "--on", backend,
                "--precision", precision, "--hw", "hbm-pim")
        assert r.exit_code == 0, r.output
        outs[backend] = np.load(o)["logits"]
    ref, emu = outs["reference"], outs["emulator"]
    assert np.abs(ref - emu).max() <= tol * np.abs(ref).max()
    assert ref.argmax() == emu.argmax()
