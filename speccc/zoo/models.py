"""Decoder graphs (llama-like and gpt2/OPT-like) from a `ModelSpec`.

Interface (batch fixed to 1; "T" new tokens, "P" past tokens):
  inputs   input_ids [1, T] int64, position_ids [1, T] int64,
           decode only: past_key_values.{i}.key / .value [1, G, P, D]
  outputs  logits [1, T, V],
           present.{i}.key / .value [1, G, T, D] (prefill) or [1, G, P+T, D] (decode),
           present = Concat(past, new) along axis 2; keys are stored after rotary.
G = kv_heads, D = hidden / heads, V = vocab. Parameter names follow Hugging Face
(`model.layers.0.self_attn.q_proj.weight`, `transformer.h.0.attn.c_attn.weight`).
"""
from __future__ import annotations

import json

from onnx import TensorProto

from .builder import GraphBuilder
from .spec import ModelSpec

INT64 = TensorProto.INT64


class _Decoder:
    def __init__(self, spec: ModelSpec):
        self.s = spec
        self.b = GraphBuilder(dtype=spec.dtype, weights=spec.weights, seed=spec.seed)

    def layer_scale(self, i: int) -> float:
        s = self.s
        return s.residual_scale if i >= s.layers - s.scaled_layers else 1.0

    def kv(self, i: int, k: str, v: str) -> tuple[str, str]:
        """Append this step's k/v ([1,G,T,D]) to the cache; expose present.{i}.*."""
        b, s = self.b, self.s
        seq = "P+T" if s.mode == "decode" else "T"
        out = []
        for kind, new in (("key", k), ("value", v)):
            if s.mode == "decode":
                new = b.op("Concat", f"past_key_values.{i}.{kind}", new, axis=2)
            name = b.rename(new, f"present.{i}.{kind}")
            b.output(name, b.elem, [1, s.kv_heads, seq, s.head_dim])
            out.append(name)
        return out[0], out[1]

    def build(self):
        b, s = self.b, self.s
        ids = b.input("input_ids", INT64, [1, "T"])
        pos = b.input("position_ids", INT64, [1, "T"])
        if s.mode == "decode":
            for i in range(s.layers):
                for kind in ("key", "value"):
                    b.input(f"past_key_values.{i}.{kind}", b.elem,
                            [1, s.kv_heads, "P", s.head_dim])
            past_len = b.op("Shape", "past_key_values.0.key", start=2, end=3)
        else:
            past_len = b.const([0])
        self.mask = b.causal_mask(ids, past_len)
        x = self.embed(ids, pos)
        for i in range(s.layers):
            with b.scope(f"layers.{i}"):
                x = self.layer(i, x)
        logits = b.rename(self.head(x), "logits")
        b.output(logits, b.elem, [1, "T", s.vocab])
        doc = (f"speccc.zoo {s.name} ({s.arch}, {s.mode}, {s.dtype}, "
               f"{'weights' if s.weights else 'shapes-only'})")
        return b.model(s.name, doc, {"speccc.spec": json.dumps(s.as_dict(), sort_keys=True)})

    def final_gain(self) -> float:
        """Gain of the final norm that gives logits of std `logit_std`: the norm outputs
        unit-RMS features, and a head whose entries have std w yields logits of std
        w * sqrt(hidden) * gain (tied heads are the embedding, untied ones linear())."""
        s = self.s
        head_std = s.embed_std if s.tie_embeddings else s.hidden ** -0.5
        return s.logit_std / (head_std * s.hidden ** 0.5)

    def lm_head(self, x: str, embed: str, name: str) -> str:
        b, s = self.b, self.s
        if s.tie_embeddings:
            return b.op("MatMul", x, b.op("Transpose", embed, perm=[1, 0]))
        return b.linear(x, name, s.hidden, s.vocab)


class _Llama(_Decoder):
    def embed(self, ids: str, pos: str) -> str:
        b, s = self.b, self.s
        self.embed_w = b.param("model.embed_tokens.weight", (s.vocab, s.hidden),
                               std=s.embed_std)
        self.cos, self.sin = b.rope_tables(pos, s.head_dim, s.rope_theta)
        return b.op("Gather", self.embed_w, ids, axis=0)

    def layer(self, i: int, x: str) -> str:
        b, s = self.b, self.s
        c, d, scale, p = s.hidden, s.head_dim, self.layer_scale(i), f"model.layers.{i}"
        h = b.rmsnorm(x, f"{p}.input_layernorm", c, s.norm_eps)
        a = f"{p}.self_attn"
        q = b.split_heads(b.linear(h, f"{a}.q_proj", c, s.heads * d), s.heads, d)
        k = b.split_heads(b.linear(h, f"{a}.k_proj", c, s.kv_heads * d), s.kv_heads, d)
        v = b.split_heads(b.linear(h, f"{a}.v_proj", c, s.kv_heads * d), s.kv_heads, d)
        q = b.apply_rope(q, self.cos, self.sin, d)
        k, v = self.kv(i, b.apply_rope(k, self.cos, self.sin, d), v)
        o = b.attention(q, k, v, self.mask, s.heads, s.kv_heads, d)
        x = b.op("Add", x, b.linear(o, f"{a}.o_proj", s.heads * d, c, scale=scale))
        h = b.rmsnorm(x, f"{p}.post_attention_layernorm", c, s.norm_eps)
        m = f"{p}.mlp"
        g = b.silu(b.linear(h, f"{m}.gate_proj", c, s.ffn))
        u = b.op("Mul", g, b.linear(h, f"{m}.up_proj", c, s.ffn))
        return b.op("Add", x, b.linear(u, f"{m}.down_proj", s.ffn, c, scale=scale))

    def head(self, x: str) -> str:
        s = self.s
        x = self.b.rmsnorm(x, "model.norm", s.hidden, s.norm_eps, gain=self.final_gain())
        return self.lm_head(x, self.embed_w, "lm_head")


class _GPT2(_Decoder):
    def embed(self, ids: str, pos: str) -> str:
        b, s = self.b, self.s
        self.embed_w = b.param("transformer.wte.weight", (s.vocab, s.hidden),
                               std=s.embed_std)
        wpe = b.param("transformer.wpe.weight",
                      (s.max_positions + s.position_offset, s.hidden), std=s.embed_std / 2)
        if s.position_offset:
            pos = b.op("Add", pos, b.const([s.position_offset]))
        return b.op("Add", b.op("Gather", self.embed_w, ids, axis=0),
                    b.op("Gather", wpe, pos, axis=0))

    def layer(self, i: int, x: str) -> str:
        b, s = self.b, self.s
        c, d, scale, p = s.hidden, s.head_dim, self.layer_scale(i), f"transformer.h.{i}"
        h = b.layernorm(x, f"{p}.ln_1", c, s.norm_eps)
        qkv = b.linear(h, f"{p}.attn.c_attn", c, 3 * c, bias=True)
        q, k, v = (b.split_heads(t, s.heads, d)
                   for t in b.op("Split", qkv, b.const([c, c, c]), axis=-1, n_out=3))
        k, v = self.kv(i, k, v)
        o = b.attention(q, k, v, self.mask, s.heads, s.kv_heads, d)
        x = b.op("Add", x, b.linear(o, f"{p}.attn.c_proj", c, c, bias=True, scale=scale))
        h = b.layernorm(x, f"{p}.ln_2", c, s.norm_eps)
        f = b.linear(h, f"{p}.mlp.c_fc", c, s.ffn, bias=True)
        f = b.gelu_tanh(f) if s.activation == "gelu_tanh" else b.op("Relu", f)
        return b.op("Add", x, b.linear(f, f"{p}.mlp.c_proj", s.ffn, c, bias=True, scale=scale))

    def head(self, x: str) -> str:
        s = self.s
        x = self.b.layernorm(x, "transformer.ln_f", s.hidden, s.norm_eps,
                             gain=self.final_gain())
        return self.lm_head(x, self.embed_w, "lm_head")


def build_model(spec: ModelSpec):
    return {"llama": _Llama, "gpt2": _GPT2}[spec.arch](spec).build()
