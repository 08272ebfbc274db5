"""GGUF (llama.cpp's weight file) -> a LLaMA-style decoder ONNX with real weights.

    info = read_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")     # spec + metadata, lazy tensors
    model = gguf_to_onnx(info, dtype="float32", quant="int4", group=64)

The `gguf` package parses the file and dequantizes its blocks (Q4_1, Q8_0, ...); the graph
is zoo/models.py's `_Llama` (the same subgraphs as the code-built zoo models), with
`GraphBuilder.param` answering from the file instead of a random generator and, for
`quant=int8|int4`, every linear written as com.microsoft.MatMulNBits over the dequantized
weights re-quantized with an asymmetric `group`-wide block grid. The tied embedding /
lm_head stays float (it is a Gather table too).

Interface: models.py's decode mode (input_ids, position_ids, past_key_values.{i}.key|value
-> logits, present.{i}.key|value), HF parameter names, `speccc.spec` metadata plus the
source path and quantization in `speccc.gguf` (the tokenizer is read from that file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from speccc.errors import SpecccError

from .builder import GraphBuilder
from .models import _Llama
from .spec import ModelSpec

QUANTS = ("dequant", "int8", "int4")
MS_DOMAIN = "com.microsoft"

# GGML tensor types whose dequantizer the gguf package provides and we have checked.
SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                   "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

# GGUF tensor name (after "blk.{i}.") -> HF parameter name (after "model.layers.{i}.").
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
              "output_norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}


@dataclass
class GGUFInfo:
    path: Path
    spec: ModelSpec
    fields: dict          # general.* metadata key -> python value
    tensors: dict         # HF name -> gguf ReaderTensor (not yet dequantized)

    def weight(self, name: str) -> np.ndarray:
        """HF-layout float32 array: linears [out, in], q/k rows in HF's rotary order."""
        from gguf.quants import dequantize
        t = self.tensors[name]
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape)])  # GGUF lists dims innermost first
        s = self.spec
        if name.endswith("q_proj.weight"):
            w = _unpermute_rotary(w, s.heads)
        elif name.endswith("k_proj.weight"):
            w = _unpermute_rotary(w, s.kv_heads)
        return w


def _unpermute_rotary(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter interleaves each head's rows so its rotary pairs (2i, 2i+1);
    HF pairs (i, i + d/2) (rotate_half). Undo it, as transformers does when loading GGUF."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _fail(path, msg: str):
    raise SpecccError(msg, location=str(path))


def _open(path):
    import gguf
    p = Path(path)
    if not p.is_file():
        _fail(p, "no such file" if not p.exists() else "not a regular file")
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        _fail(p, f"not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    try:
        return gguf.GGUFReader(p)
    except Exception as err:  # the reader raises ValueError/IndexError/... on a cut file
        _fail(p, f"cannot read GGUF (truncated or corrupt?): {err}")


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def read_fields(path, prefix: str = "") -> dict:
    """Metadata fields (key -> python value) whose key starts with `prefix`."""
    reader = _open(path)
    return {k: f.contents() for k, f in reader.fields.items() if k.startswith(prefix)}


def read_gguf(path) -> GGUFInfo:
    """Open and validate a GGUF file: architecture, tensor types and names, dims."""
    p = Path(path)
    reader = _open(p)
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        _fail(p, f"unsupported architecture {arch!r} (speccc imports GGUF 'llama' models)")
    bad = sorted({t.tensor_type.name for t in reader.tensors}
                 - set(SUPPORTED_TYPES))
    if bad:
        _fail(p, f"unsupported GGML quantization type(s) {', '.join(bad)}; supported: "
                 f"{', '.join(SUPPORTED_TYPES)}")
    g = lambda k, d=None: _field(reader, f"llama.{k}", d)  # noqa: E731
    try:
        layers, hidden = int(g("block_count")), int(g("embedding_length"))
        heads, ffn = int(g("attention.head_count")), int(g("feed_forward_length"))
    except TypeError:
        _fail(p, "missing llama.* hyperparameters (block_count, embedding_length, ...)")
    tensors = {}
    for t in reader.tensors:
        name = _TOP_NAMES.get(t.name)
        if name is None and t.name.startswith("blk."):
            _, i, rest = t.name.split(".", 2)
            name = f"model.layers.{i}.{_LAYER_NAMES[rest]}" if rest in _LAYER_NAMES else None
        if name is None:
            _fail(p, f"unexpected tensor {t.name!r} for a llama model")
        tensors[name] = t
    vocab = int(tensors["model.embed_tokens.weight"].shape[-1]) \
        if "model.embed_tokens.weight" in tensors else 0
    need = ["model.embed_tokens.weight", "model.norm.weight"] + [
        f"model.layers.{i}.{n}" for i in range(layers) for n in _LAYER_NAMES.values()]
    missing = [n for n in need if n not in tensors]
    if missing:
        _fail(p, f"missing tensor {missing[0]} ({len(missing)} missing)")
    spec = ModelSpec(
        p.stem, "llama", layers, hidden, heads, int(g("attention.head_count_kv", heads)), ffn,
        vocab, int(g("context_length", 2048)), mode="decode",
        tie_embeddings="lm_head.weight" not in tensors,
        norm_eps=float(np.float32(g("attention.layer_norm_rms_epsilon", 1e-5))),
        rope_theta=float(g("rope.freq_base", 10000.0)))
    fields = {k: f.contents() for k, f in reader.fields.items() if k.startswith("general.")}
    return GGUFInfo(p, spec, fields, tensors)


def quantize_blocks(w: np.ndarray, bits: int, group: int):
    """MatMulNBits operands for W [N, K]: asymmetric min/max per `group` run of K.
    Returns (B u8 [N, blocks, group*bits/8], scales f32 [N*blocks], zero points u8)."""
    n, k = w.shape
    blocks = -(-k // group)
    wp = np.zeros((n, blocks * group), np.float32)
    wp[:, :k] = w
    wp = wp.reshape(n, blocks, group)
    lo, hi = np.minimum(wp.min(-1), 0.0), np.maximum(wp.max(-1), 0.0)  # 0 exactly codable
    top = (1 << bits) - 1
    scale = np.where(hi > lo, (hi - lo) / top, 1.0).astype(np.float32)
    zp = np.clip(np.rint(-lo / scale), 0, top).astype(np.uint8)
    q = np.clip(np.rint(wp / scale[..., None]) + zp[..., None], 0, top).astype(np.uint8)
    return _pack(q, bits), scale.reshape(-1), _pack(zp, bits).reshape(-1)


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned codes low-bit first along the last axis (MatMulNBits' layout)."""
    per = 8 // bits
    pad = -codes.shape[-1] % per
    if pad:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (pad,), codes.dtype)], -1)
    c = codes.reshape(codes.shape[:-1] + (-1, per)).astype(np.uint8)
    return np.bitwise_or.reduce([c[..., i] << (bits * i) for i in range(per)]).astype(np.uint8)


class _GGUFBuilder(GraphBuilder):
    """GraphBuilder whose parameters come from the file; linears optionally MatMulNBits."""

    def __init__(self, info: GGUFInfo, dtype: str, bits: int, group: int):
        super().__init__(dtype=dtype, weights=True)
        self.info, self.bits, self.group = info, bits, group

    def param(self, name, shape, **_):
        w = self.info.weight(name)
        if w.ndim == 2 and name != "model.embed_tokens.weight":
            w = w.T  # linears are stored [in, out], as exporters emit them
        assert w.shape == tuple(shape), (name, w.shape, shape)
        self.inits.append(numpy_helper.from_array(w.astype(self.np_dtype), name))
        return name

    def linear(self, x, name, n_in, n_out, *, bias=False, scale=1.0):
        if not self.bits:
            return super().linear(x, name, n_in, n_out, bias=bias, scale=scale)
        with self.scope(name):
            b, s, zp = quantize_blocks(self.info.weight(f"{name}.weight"), self.bits, self.group)
            names = [f"{name}.weight_q", f"{name}.scales", f"{name}.zero_points"]
            for n, arr in zip(names, (b, s.astype(self.np_dtype), zp)):
                self.inits.append(numpy_helper.from_array(arr, n))
            self._count += 1
            out = f"{self._scope}/MatMulNBits_{self._count}_out"
            self.nodes.append(helper.make_node(
                "MatMulNBits", [x, *names], [out], name=out[:-4], domain=MS_DOMAIN,
                K=n_in, N=n_out, bits=self.bits, block_size=self.group))
            return out


class _GGUFLlama(_Llama):
    def __init__(self, info: GGUFInfo, spec: ModelSpec, bits: int, group: int):
        self.s = spec
        self.b = _GGUFBuilder(info, spec.dtype, bits, group)


def gguf_to_onnx(info: GGUFInfo, *, dtype: str = "float32", quant: str = "dequant",
                 group: int = 64, name: str | None = None):
    """The decoder ONNX (decode mode) of a read GGUF file; see the module docstring."""
    if quant not in QUANTS:
        raise SpecccError(f"--quant must be one of {', '.join(QUANTS)}, got {quant!r}")
    if group < 16 or group & (group - 1):
        raise SpecccError(f"--group must be a power of two >= 16, got {group}")
    bits = {"dequant": 0, "int8": 8, "int4": 4}[quant]
    spec = info.spec.replace(dtype=dtype, name=name or info.spec.name)
    model = _GGUFLlama(info, spec, bits, group).build()
    if bits:
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    src = {"path": str(info.path.resolve()), "quant": quant, "group": group if bits else None,
           "dtype": dtype}
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                   "speccc.gguf": json.dumps(src, sort_keys=True)})
    return model
