"""`ModelSpec`: every knob of a zoo model, plus its analytic parameter count."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from speccc.errors import SpecccError

ARCHS = ("llama", "gpt2")
ACTIVATIONS = {"llama": ("silu",), "gpt2": ("gelu_tanh", "relu")}
DTYPES = ("float32", "float16", "bfloat16")
MODES = ("prefill", "decode")


# Upper bounds: about 8x the largest published LLMs (LLaMA-2-70B: 80 layers, hidden 8192,
# ffn 28672; Qwen2 vocab 152064), so a typo (`--layers 100000`) is an error, not an hour.
SIZE_LIMITS = {"layers": 1024, "hidden": 65536, "heads": 1024, "kv_heads": 1024,
               "ffn": 262144, "vocab": 1 << 20, "max_positions": 1 << 20}
# Random weights are generated in memory: 256 M fp32 parameters = 1 GiB.
MAX_RANDOM_PARAMS = 1 << 28


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only LM. `arch="llama"`: RMSNorm, rotary, GQA, SiLU-gated MLP.
    `arch="gpt2"`: LayerNorm, learned positions, fused qkv + biases, GELU (tanh) or ReLU
    MLP (OPT), tied lm_head.

    mode: "prefill" (inputs input_ids, position_ids) or "decode" (plus past KV inputs).
    weights: False -> shapes-only (initializers carry shapes, no bytes; see builder.py).
    scaled_layers / residual_scale: the last `scaled_layers` layers have their attention
    and MLP output projections (weights and biases) multiplied by `residual_scale`;
    build_pair uses this for near-identity extra target layers.

    Initialisation (weights=True). A random decoder's output statistics are set by a few
    scales, chosen so that the tiny models behave like small trained LMs (greedy top-1
    probability spread around 0.3-0.8, varied tokens) rather than near-uniform or
    constant:
    embed_std: std of the token embedding (and, at half of it, of GPT-2/OPT's learned
      positions, the ratio GPT-2 initialises them with); the default 0.02 is Hugging
      Face's initializer_range (the zoo used 1.0, making GPT-2/OPT-tiny emit one token
      forever with confidence 1.0). Small next to what the blocks
      add to the residual stream, as in trained models: with tied embeddings the lm_head
      scores each token by its embedding's overlap with the final hidden state, and an
      embedding that dominates the residual makes the input token win every time (a
      model that repeats one token forever).
    logit_std: std of the logits over the vocabulary. It sets how peaked the output
      distribution is (over 256 tokens, 1 gives top-1 ~0.04, 4 gives a median ~0.45); it
      is realised as the gain of the final norm, which feeds the lm_head unit-RMS
      features, so it holds for tied and untied heads alike. (The zoo had unit-gain
      norms and a 1/sqrt(hidden) head: logits of std ~1, llama-tiny's top-1 ~0.04.)
    """

    name: str
    arch: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    max_positions: int
    seed: int = 0
    dtype: str = "float32"
    weights: bool = True
    mode: str = "prefill"
    activation: str = "silu"
    tie_embeddings: bool = False
    position_offset: int = 0  # OPT: learned positions are looked up at position_id + 2
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    scaled_layers: int = 0
    residual_scale: float = 1.0
    embed_std: float = 0.02
    logit_std: float = 4.0
    family: str = ""   # the label `zoo --list` shows (OPT is built by the gpt2 builder)

    @property
    def family_label(self) -> str:
        return self.family or self.arch

    def __post_init__(self) -> None:
        where = f"zoo model {self.name!r}"
        if self.arch not in ARCHS:
            raise SpecccError(f"arch must be one of {ARCHS}, got {self.arch!r}", location=where)
        if self.activation not in ACTIVATIONS[self.arch]:
            raise SpecccError(f"activation for {self.arch} must be one of "
                              f"{ACTIVATIONS[self.arch]}, got {self.activation!r}", location=where)
        if self.dtype not in DTYPES:
            raise SpecccError(f"dtype must be one of {DTYPES}, got {self.dtype!r}", location=where)
        if self.mode not in MODES:
            raise SpecccError(f"mode must be one of {MODES}, got {self.mode!r}", location=where)
        for f, hi in SIZE_LIMITS.items():
            if not 1 <= getattr(self, f) <= hi:
                raise SpecccError(f"{f} must be in 1..{hi}, got {getattr(self, f)}",
                                  location=where)
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise SpecccError(f"need hidden % heads == 0 and heads % kv_heads == 0 "
                              f"(hidden={self.hidden}, heads={self.heads}, "
                              f"kv_heads={self.kv_heads})", location=where)
        if (self.hidden // self.heads) % 2:
            raise SpecccError(f"head dim {self.hidden // self.heads} must be even", location=where)
        if self.arch == "gpt2" and self.kv_heads != self.heads:
            raise SpecccError("gpt2 arch is multi-head: kv_heads must equal heads",
                              location=where)
        for f in ("embed_std", "logit_std"):
            if not getattr(self, f) > 0:
                raise SpecccError(f"{f} must be > 0, got {getattr(self, f)}", location=where)
        if not 0 <= self.scaled_layers <= self.layers:
            raise SpecccError(f"scaled_layers must be in 0..{self.layers}", location=where)
        for f in ("norm_eps", "rope_theta", "residual_scale"):
            if not math.isfinite(getattr(self, f)):
                raise SpecccError(f"{f} must be a finite number, got {getattr(self, f)}",
                                  location=where)
        if self.weights and self.param_count() > MAX_RANDOM_PARAMS:
            raise SpecccError(f"{self.param_count():,} random parameters is more than "
                              f"{MAX_RANDOM_PARAMS:,}; use --shapes-only (weights=False)",
                              location=where)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def replace(self, **overrides) -> "ModelSpec":
        """A copy with fields replaced; unknown field names are a SpecccError."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise SpecccError(f"unknown ModelSpec field(s) {bad}; known: {sorted(known)}",
                              location=f"zoo model {self.name!r}")
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def param_count(self) -> int:
        """Number of parameters (= elements of all initializers of the built model)."""
        c, f, v = self.hidden, self.ffn, self.vocab
        qd, kvd = self.heads * self.head_dim, self.kv_heads * self.head_dim
        embed = 0 if self.tie_embeddings else v * c  # lm_head
        if self.arch == "llama":
            layer = 2 * c + c * qd + 2 * c * kvd + qd * c + 3 * c * f
            return v * c + self.layers * layer + c + embed
        layer = 4 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c)
        pos = (self.max_positions + self.position_offset) * c
        return v * c + pos + self.layers * layer + 2 * c + embed

    def param_bytes(self) -> int:
        return self.param_count() * (4 if self.dtype == "float32" else 2)
