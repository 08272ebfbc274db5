"""`fuse` on real Hugging Face exports (tests/exports/hf_export.py: torch.onnx dynamo, opset 18).

For each family x mode: import, run the canonical pipeline, and check that every decoder
layer became LLM ops (2 layers per model):

    gpt2     layernorm, linear c_attn + split, attention, linear c_proj, layernorm,
             linear c_fc, gelu(tanh), linear c_proj;      + final layernorm, tied lm_head
    opt      layernorm, linear q/k/v, attention, linear out_proj, layernorm, linear fc1,
             relu, linear fc2;                            + final layernorm, tied lm_head
    llama    rmsnorm, linear q/k/v, rope q/k, attention, linear o_proj, rmsnorm, gated_mlp
    qwen2    (the same; q/k/v linears with bias)
    mistral  (the same; decode attention has sliding_window = 4096)
    phi3     rmsnorm, linear qkv + 3 slices, rope q/k, attention, linear o_proj, rmsnorm,
             gated_mlp with the fused gate|up weight (3 operands)

and that no softmax / reduce_mean / matmul / gemm / layer_norm / spelled-out activation is
left. Decode masks are causal by evaluation; transformers-5 prefill masks depend on the
*values* of position_ids (packed-sequence detection), so except for OPT's they stay an
attention operand. Numerics of the fused graphs are checked by tests/test_exports.py
(`speccc exec`); here, Mistral decode also runs past its 4096-key window against
onnxruntime, with and without the sliding_window attribute.
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from exports import hf_export as hx  # noqa: E402  (tests/ is on sys.path under pytest)

from speccc.driver import load_any  # noqa: E402
from speccc.pipeline import run_canonical  # noqa: E402

pytestmark = pytest.mark.export

LLAMA_LIKE = {"rmsnorm": 5, "linear": 9, "rope": 4, "attention": 2, "gated_mlp": 2}
EXPECTED = {
    "gpt2": {"layernorm": 5, "linear": 9, "split": 2, "gelu": 2, "attention": 2},
    "opt": {"layernorm": 5, "linear": 13, "relu": 2, "attention": 2},
    "llama": LLAMA_LIKE, "qwen2": LLAMA_LIKE, "mistral": LLAMA_LIKE,
    "phi3": {**LLAMA_LIKE, "linear": 5, "slice": 6},  # qkv linear + 3 slices per layer
}
LEFT_OVER = {"softmax", "reduce_mean", "matmul", "gemm", "layer_norm", "pow", "tanh",
             "sigmoid", "isnan", "erf", "reciprocal", "sqrt", "neg"}
EXPORTS = [pytest.param(f, m, id=f"{f}-{m}") for f in hx.FAMILIES for m in hx.MODES]


def _fused(path):
    module = load_any(path)
    run_canonical(module)
    return next(iter(module))


def _producer(v):
    return v.op.name if v.op is not None else "argument"


@pytest.mark.parametrize("family,mode", EXPORTS)
def test_fused_ops(hf_export, family, mode):
    g = _fused(hf_export(family, mode))
    ops = list(g.ops())
    counts = collections.Counter(op.name for op in ops)
    expected = dict(EXPECTED[family])
    if family == "phi3" and mode == "prefill":
        expected["slice"] += 3  # the packed-sequence mask slices position_ids
    got = {name: counts.get(name, 0) for name in expected}
    assert got == expected, dict(sorted(counts.items()))
    assert not LEFT_OVER & set(counts), sorted(LEFT_OVER & set(counts))

    for op in ops:
        if op.name in ("linear", "gated_mlp"):  # every projection reads stored weights
            assert all(_producer(w) == "weight" for w in op.operands[1:]), op
    attention = [op for op in ops if op.name == "attention"]
    for op in attention:
        q, k, v = op.operands[:3]
        a = op.attrs
        assert a["scale"] == 0.25 and a.get("nan_to_zero"), a  # 1/sqrt(16), sdpa guard
        assert q.type.shape[1] == 4 and k.type.shape[1] == v.type.shape[1] == \
            hx.spec(family).kv_heads, op  # the GQA repeat is undone
        if family in ("llama", "qwen2", "mistral", "phi3"):
            assert _producer(q) == "rope", op
        if mode == "decode":  # k, v are the present.* cache outputs themselves
            assert g.is_output(k) and g.is_output(v), op
        if mode == "decode" or family == "opt":
            assert a.get("causal") and len(op.operands) == 3, op
            window = 4096 if family == "mistral" and mode == "decode" else 0
            assert a.get("sliding_window", 0) == window, op
        else:  # mask from position_ids values: not provably causal, stays an operand
            assert not a.get("causal") and len(op.operands) == 4, op
    mlps = [op for op in ops if op.name == "gated_mlp"]
    assert all(_producer(m.operands[0]) == "rmsnorm" for m in mlps)
    assert all(len(m.operands) == (3 if family == "phi3" else 4) for m in mlps)


def _long_decode_inputs(T, P, seed=0):
    s = hx.spec("mistral")
    rng = np.random.default_rng(seed)
    out = {"input_ids": rng.integers(0, s.vocab, size=(1, T), dtype=np.int64),
           "position_ids": np.arange(P, P + T, dtype=np.int64)[None, :]}
    for name in hx.input_names("mistral", "decode")[2:]:
        out[name] = rng.standard_normal((1, s.kv_heads, P, s.head_dim)).astype(np.float32)
    return out


def test_mistral_sliding_window_past_4096(hf_export):
    """T=3 new tokens after P=4100 cached ones: the window hides the oldest keys."""
    from speccc.ir.interpreter import run_graph
    path = hf_export("mistral", "decode")
    T, P = 3, 4100
    inputs = _long_decode_inputs(T, P)
    ref = hx.reference_outputs(path, inputs)["logits"]
    g = _fused(path)
    attention = [op for op in g.ops() if op.name == "attention"]
    assert [op.attrs.get("sliding_window") for op in attention] == [4096, 4096]

    def err():
        got = run_graph(g, inputs, {"T": T, "P": P})["logits"]
        return float(np.abs(got - ref).max() / max(1.0, float(np.abs(ref).max())))

    assert err() <= 1e-4
    for op in attention:  # plain causal attention sees keys the export does not
        del op.attrs["sliding_window"]
    assert err() > 1e-3
