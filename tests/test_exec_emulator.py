"""`speccc exec --on emulator`: PIM ops (linear, attention, gated_mlp, ...) placed, lowered by
targets/pim/codegen and run by the functional PIM emulator; the rest by the reference
interpreter. Compared with onnxruntime by max|a-b| / max(1, max|ref|):
  fp32 (the emulator's fp32 oracle)  <= 1e-4
  fp16 (the preset's 16-bit formats) <= 1e-2   (aim-gddr6 computes in bf16: <= 2e-2)
Zoo models always run; the Hugging Face dynamo exports (tests/exports) are marked `export`.
"""
from __future__ import annotations

import traceback

import numpy as np
import pytest
from click.testing import CliRunner

from speccc import driver, zoo
from speccc.cli import main

CASES = [("prefill", 8, 0), ("decode", 1, 4), ("decode", 5, 3)]
TOL = {"fp32": 1e-4, "fp16": 1e-2}
BF16_TOL = 2e-2


def scaled_err(got, ref) -> float:
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(ref, np.float64)).max()
    return float(diff / max(1.0, float(np.abs(ref).max())))


def ort_outputs(path, feeds) -> dict:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def zoo_inputs(name: str, mode: str, T: int, P: int, seed: int = 0) -> dict:
    return zoo.example_inputs(name, mode, T, P, seed)


@pytest.fixture(scope="module")
def zoo_model(tmp_path_factory):
    cache = {}

    def get(name: str, mode: str):
        if (name, mode) not in cache:
            p = tmp_path_factory.mktemp("zoo") / f"{name}-{mode}.onnx"
            zoo.save(zoo.build(name, mode=mode), p)
            cache[name, mode] = p
        return cache[name, mode]
    return get


def exec_err(model, feeds, tmp_path, **kw) -> float:
    np.savez(tmp_path / "in.npz", **feeds)
    got, _ = driver.exec_model(model, tmp_path / "in.npz", {}, None, backend="emulator", **kw)
    ref = ort_outputs(model, feeds)
    assert sorted(got) == sorted(ref)
    return max(scaled_err(got[k], ref[k]) for k in ref)


ZOO = [pytest.param(n, m, t, p, id=f"{n}-{m}-T{t}-P{p}",
                    marks=() if n == "llama-tiny" or (t, p) == (5, 3) else pytest.mark.slow)
       for n in ("llama-tiny", "gpt2-tiny", "opt-tiny") for m, t, p in CASES]


@pytest.mark.parametrize("name,mode,T,P", ZOO)
def test_zoo_fp32(zoo_model, tmp_path, name, mode, T, P):
    err = exec_err(zoo_model(name, mode), zoo_inputs(name, mode, T, P), tmp_path)
    assert err <= TOL["fp32"], err


@pytest.mark.parametrize("hw", ["hbm-pim", "aim-gddr6", "hbm3-pim"])
def test_zoo_fp16_every_preset(zoo_model, tmp_path, hw):
    err = exec_err(zoo_model("llama-tiny", "decode"), zoo_inputs("llama-tiny", "decode", 5, 3),
                   tmp_path, precision="fp16", hw=hw)
    assert err <= (BF16_TOL if hw == "aim-gddr6" else TOL["fp16"]), err
    assert err > 1e-6  # 16-bit arithmetic really happened


def test_pim_ops_really_run_on_the_emulator(zoo_model, tmp_path, monkeypatch):
    from speccc.targets.pim import codegen
    ran = []
    for cls in (codegen.GemvKernel, codegen.GatedMlpKernel, codegen.AttentionKernel):
        orig = cls.run

        def spy(self, *a, _orig=orig, **k):
            ran.append(self.op)
            return _orig(self, *a, **k)
        monkeypatch.setattr(cls, "run", spy)
    exec_err(zoo_model("llama-tiny", "decode"), zoo_inputs("llama-tiny", "decode", 1, 4), tmp_path)
    assert sorted(set(ran)) == ["attention", "gated_mlp", "linear"]
    assert ran.count("attention") == 2 and ran.count("linear") == 9


def test_cli_exec_on_emulator(zoo_model, tmp_path):
    model = zoo_model("gpt2-tiny", "decode")
    feeds = zoo_inputs("gpt2-tiny", "decode", 2, 5)
    np.savez(tmp_path / "in.npz", **feeds)
    r = CliRunner().invoke(main, ["exec", str(model), "--inputs", str(tmp_path / "in.npz"),
                                  "-o", str(tmp_path / "out.npz"), "--on", "emulator",
                                  "--precision", "fp16", "--hw", "hbm3-pim"])
    assert r.exit_code == 0, r.output
    ref = ort_outputs(model, feeds)
    with np.load(tmp_path / "out.npz") as out:
        assert max(scaled_err(out[k], ref[k]) for k in ref) <= TOL["fp16"]


def test_exec_times_only_when_asked(zoo_model, tmp_path):
    """Values need no timing: without --time nothing is timed; with it every listing is,
    the values are the same and a per-phase table is printed."""
    model = zoo_model("llama-tiny", "decode")
    np.savez(tmp_path / "in.npz", **zoo_inputs("llama-tiny", "decode", 1, 4))
    timings: list = []
    plain, _ = driver.exec_model(model, tmp_path / "in.npz", {}, None, backend="emulator")
    timed, _ = driver.exec_model(model, tmp_path / "in.npz", {}, None, backend="emulator",
                                 timings=timings)
    assert all(np.array_equal(plain[k], timed[k]) for k in plain)
    assert len(timings) == 19 and all(r.cycles > 0 for _, r in timings)
    args = ["exec", str(model), "--inputs", str(tmp_path / "in.npz"), "-o",
            str(tmp_path / "o.npz")]
    r = CliRunner().invoke(main, args + ["--on", "emulator", "--time"])
    assert r.exit_code == 0, r.output
    assert "PIM timing on hbm-pim" in r.output and "linear.gemv" in r.output
    assert "total" in r.output
    r = CliRunner().invoke(main, args + ["--time"])
    assert r.exit_code == 2 and "--time needs --on emulator" in r.stderr


def test_max_context_too_small_is_an_error(zoo_model, tmp_path):
    feeds = zoo_inputs("llama-tiny", "decode", 1, 4)
    np.savez(tmp_path / "in.npz", **feeds)
    r = CliRunner().invoke(main, ["exec", str(zoo_model("llama-tiny", "decode")), "--inputs",
                                  str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz"),
                                  "--on", "emulator", "--max-context", "3"])
    assert r.exit_code == 2 and "exceeds max_context=3" in r.stderr, r.output
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("bad", ["no-such-preset", "broken.toml"])
def test_exec_bad_hw(zoo_model, tmp_path, bad):
    if bad.endswith(".toml"):
        (tmp_path / bad).write_text("name = 'x'\n[pim\nchannels = 2\n")
        bad = str(tmp_path / bad)
    np.savez(tmp_path / "in.npz", **zoo_inputs("llama-tiny", "prefill", 2, 0))
    out = tmp_path / "o.npz"
    r = CliRunner().invoke(main, ["exec", str(zoo_model("llama-tiny", "prefill")), "--inputs",
                                  str(tmp_path / "in.npz"), "-o", str(out), "--on", "emulator",
                                  "--hw", bad])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speccc: error: "), r.stderr
    assert ("unknown hardware preset" in err[0]) if "no-such" in bad else ("invalid TOML" in err[0])
    assert not out.exists()


# ----------------------------------------------------- Hugging Face exports ---
def _hf_params():
    try:
        from exports import hf_export as hx
    except Exception:  # pragma: no cover - tests/ not on sys.path
        return []
    return [pytest.param(f, m, t, p, id=f"{f}-{m}-T{t}-P{p}", marks=pytest.mark.export)
            for f in hx.FAMILIES for m, t, p in CASES]


@pytest.mark.parametrize("family,mode,T,P", _hf_params())
def test_hf_export_fp32_cli(hf_export, tmp_path, family, mode, T, P):
    """The acceptance: `speccc exec --on emulator --precision fp32` vs onnxruntime."""
    from exports import hf_export as hx
    model = hf_export(family, mode)
    inputs = hx.make_inputs(family, mode, T, P, seed=7)
    ref = hx.reference_outputs(model, inputs)
    np.savez(tmp_path / "in.npz", **inputs)
    args = ["exec", str(model), "--inputs", str(tmp_path / "in.npz"), "-o",
            str(tmp_path / "out.npz"), "--on", "emulator", "--precision", "fp32"]
    r = CliRunner().invoke(main, args)
    if r.exit_code != 0:
        tb = "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else ""
        pytest.fail(f"speccc {' '.join(args)} exited {r.exit_code}\n{r.output}\n{tb}")
    with np.load(tmp_path / "out.npz") as out:
        errs = {k: scaled_err(out[k], ref[k]) for k in ref}
    assert max(errs.values()) <= TOL["fp32"], errs


@pytest.mark.parametrize("family,mode,T,P", _hf_params())
def test_hf_export_fp16(hf_export, tmp_path, family, mode, T, P):
    from exports import hf_export as hx
    model = hf_export(family, mode)
    inputs = hx.make_inputs(family, mode, T, P, seed=7)
    ref = hx.reference_outputs(model, inputs)
    np.savez(tmp_path / "in.npz", **inputs)
    got, _ = driver.exec_model(model, tmp_path / "in.npz", {}, None, backend="emulator",
                               precision="fp16")
    errs = {k: scaled_err(got[k], ref[k]) for k in ref}
    assert max(errs.values()) <= TOL["fp16"], errs
