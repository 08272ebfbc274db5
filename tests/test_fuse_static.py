"""Static-shape exports and fuse's per-layer warnings (issue 16 item 7).

A LLaMA exported with static shapes folds its causal mask into a stored constant and
flattens the GQA key repeat straight into kᵀ; fuse reads the stored mask and fuses only
when it is exactly causal. Every layer whose attention or MLP stays unfused gets one
warning line saying why (graph attribute fuse_warnings -> compile's stderr and
report.json)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper

from cli_helpers import invoke

from speccc.driver import load_any
from speccc.pipeline import run_canonical


def _fused(path, **kw):
    module = load_any(path, **kw)
    run_canonical(module)
    return next(iter(module))


def _save(nodes, inputs, outputs, path, inits=()):
    g = oh.make_graph(nodes, "g", [oh.make_tensor_value_info(n, TP.FLOAT, s) for n, s in inputs],
                      [oh.make_tensor_value_info(n, TP.FLOAT, s) for n, s in outputs],
                      initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 18)]), path)
    return path


def _attention_model(tmp_path, variant: str):
    B, H, T, S, D = 1, 2, 3, 5, 4
    nodes = [oh.make_node("Transpose", ["k"], ["kt0" if variant == "kt" else "kt"],
                          perm=[0, 1, 3, 2])]
    if variant == "kt":       # kᵀ through an op no rule expects
        nodes.append(oh.make_node("Relu", ["kt0"], ["kt"]))
    nodes.append(oh.make_node("MatMul", ["q", "kt"], ["s"]))
    nodes.append(oh.make_node("Softmax", ["s"], ["p"], axis=-1))
    if variant == "probs":    # the probabilities go through something before · v
        nodes += [oh.make_node("Add", ["p", "p"], ["p2"]), oh.make_node("MatMul", ["p2", "v"], ["o"])]
    else:
        nodes.append(oh.make_node("MatMul", ["p", "v"], ["o"]))
    return _save(nodes, [("q", [B, H, T, D]), ("k", [B, H, S, D]), ("v", [B, H, S, D])],
                 [("o", [B, H, T, D])], tmp_path / f"{variant}.onnx")


def test_plain_attention_fuses_without_warnings(tmp_path):
    g = _fused(_attention_model(tmp_path, "plain"))
    assert [op.name for op in g.ops()] == ["attention"]
    assert "fuse_warnings" not in g.attrs


@pytest.mark.parametrize("variant,why", [
    ("kt", "layer 0 attention: kᵀ is spelled relu(transpose(an input)), which no rule knows"),
    ("probs", "layer 0 attention: the probabilities feed add, not a matmul with v")])
def test_unfused_attention_says_why(tmp_path, variant, why):
    g = _fused(_attention_model(tmp_path, variant))
    assert "softmax" in [op.name for op in g.ops()]
    assert g.attrs["fuse_warnings"] == [why]


def test_gated_mlp_with_a_biased_gate_says_why(tmp_path):
    rng = np.random.default_rng(0)
    w = {n: rng.standard_normal(s).astype(np.float32) for n, s in
         (("wg", (8, 16)), ("wu", (8, 16)), ("wd", (16, 8)), ("bg", (16,)))}
    nodes = [oh.make_node("MatMul", ["x", "wg"], ["g0"]), oh.make_node("Add", ["g0", "bg"], ["g"]),
             oh.make_node("Sigmoid", ["g"], ["sg"]), oh.make_node("Mul", ["g", "sg"], ["silu"]),
             oh.make_node("MatMul", ["x", "wu"], ["u"]), oh.make_node("Mul", ["silu", "u"], ["h"]),
             oh.make_node("MatMul", ["h", "wd"], ["y"])]
    g = _fused(_save(nodes, [("x", [1, 3, 8])], [("y", [1, 3, 8])], tmp_path / "mlp.onnx",
                     inits=w.items()))
    assert "gated_mlp" not in [op.name for op in g.ops()]
    assert g.attrs["fuse_warnings"] == ["layer 0 MLP: the gate projection has a bias (gated_mlp has none)"]


def test_zoo_llama_fuses_every_layer_without_warnings(decode_pair):
    g = _fused(decode_pair / "target.onnx")
    assert "fuse_warnings" not in g.attrs


# --- real static-shape exports (the [export] extra) ---------------------------------------


@pytest.fixture(scope="module")
def static_llama():
    for mod in ("torch", "transformers", "onnxscript", "onnxruntime"):
        pytest.importorskip(mod)
    from exports import hf_export as hx
    return hx, {mode: hx.export("llama", mode, static=True) for mode in hx.MODES}


def _max_error(hx, path, g, mode, T, P):
    from speccc.frontend.onnx_import import sanitize_name
    from speccc.ir.interpreter import Plan
    ins = hx.make_inputs("llama", mode, T, P, seed=1)
    ref = hx.reference_outputs(path, ins)
    out = Plan(g).run({sanitize_name(k): v for k, v in ins.items()}, {})
    return max(float(np.abs(np.asarray(out[sanitize_name(k)]) - ref[k]).max()) for k in ref)


@pytest.mark.export
def test_static_decode_export_fuses_causal_attention(static_llama):
    hx, paths = static_llama
    g = _fused(paths["decode"])
    att = [op for op in g.ops() if op.name == "attention"]
    assert len(att) == 2 and all(op.attrs.get("causal") and len(op.operands) == 3 for op in att)
    assert sum(op.name == "gated_mlp" for op in g.ops()) == 2
    assert "softmax" not in {op.name for op in g.ops()} and "fuse_warnings" not in g.attrs
    assert _max_error(hx, paths["decode"], g, "decode", 5, 3) < 1e-4


@pytest.mark.export
def test_static_prefill_export_fuses_with_its_computed_mask(static_llama):
    hx, paths = static_llama
    g = _fused(paths["prefill"])
    assert sum(op.name == "attention" for op in g.ops()) == 2
    assert "fuse_warnings" not in g.attrs
    assert _max_error(hx, paths["prefill"], g, "prefill", 8, 0) < 1e-4


@pytest.mark.export
def test_a_stored_mask_that_is_not_causal_does_not_fuse(static_llama, tmp_path):
    hx, paths = static_llama
    model = onnx.load(paths["decode"])
    masks = [i for i in model.graph.initializer if tuple(i.dims) == (1, 1, 5, 8)]
    assert len(masks) == 1
    a = numpy_helper.to_array(masks[0]).copy()
    a[0, 0, 0, 4] = 0                   # query 0 now also sees the key after it
    masks[0].CopyFrom(numpy_helper.from_array(a, masks[0].name))
    path = tmp_path / "noncausal.onnx"
    onnx.save(model, path)
    g = _fused(path)
    assert "attention" not in {op.name for op in g.ops()}
    assert g.attrs["fuse_warnings"] == [
        f"layer {i} attention: the mask is a stored constant tensor<1x1x5x8xf32> that is "
        "not causal" for i in (0, 1)]
    assert _max_error(hx, path, g, "decode", 5, 3) < 1e-4
    out = tmp_path / "out"
    res = invoke("compile", path, "--bind", "T=5,P=3", "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stderr.count("speccc: warning: @target layer") == 2
    report = json.loads((out / "report.json").read_text())
    assert report["graphs"]["target"]["fuse_warnings"] == g.attrs["fuse_warnings"]


@pytest.mark.export
def test_shapes_only_still_reads_a_small_stored_mask(static_llama):
    _, paths = static_llama
    g = _fused(paths["decode"], shapes_only=True)
    assert sum(bool(op.attrs.get("causal")) for op in g.ops() if op.name == "attention") == 2


@pytest.mark.export
def test_a_stored_mask_without_data_is_not_trusted(static_llama, tmp_path):
    _, paths = static_llama
    model = onnx.load(paths["decode"])
    (mask,) = [i for i in model.graph.initializer if tuple(i.dims) == (1, 1, 5, 8)]
    mask.ClearField("raw_data")               # declared, its bytes elsewhere (and missing)
    mask.data_location = onnx.TensorProto.EXTERNAL
    mask.external_data.add(key="location", value="missing.bin")
    path = tmp_path / "nodata.onnx"
    onnx.save(model, path)
    g = _fused(path, shapes_only=True)
    assert "attention" not in {op.name for op in g.ops()}
    assert g.attrs["fuse_warnings"] == [
        f"layer {i} attention: the mask is a stored constant tensor<1x1x5x8xf32> without "
        "data (shapes-only?), so it cannot be checked causal" for i in (0, 1)]
