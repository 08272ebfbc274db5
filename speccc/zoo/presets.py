"""Named models, `build`, `build_pair`, and helpers for shapes-only models.

Real-size presets take their dims from shared/ANCHORS.md ("Model shapes") and default to
`weights=False` (shapes-only); tiny presets carry seeded random weights.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto

from speccc.errors import SpecccError

from .models import build_model
from .spec import ModelSpec

# protobuf cannot serialize a message >= 2 GiB; leave room for the graph itself
MAX_WEIGHT_BYTES = 1_800_000_000


def _llama(name, layers, hidden, heads, kv_heads, ffn, vocab, max_positions, **kw):
    return ModelSpec(name, "llama", layers, hidden, heads, kv_heads, ffn, vocab,
                     max_positions, **kw)


def _opt(name, layers, hidden, heads, ffn, **kw):
    return ModelSpec(name, "gpt2", layers, hidden, heads, heads, ffn, 50272, 2048,
                     activation="relu", tie_embeddings=True, position_offset=2,
                     weights=False, family="opt", **kw)


_TINY = dict(layers=2, hidden=64, heads=4, ffn=128, vocab=256, max_positions=128)

PRESETS: dict[str, ModelSpec] = {s.name: s for s in (
    # tiny, with weights (tests, examples)
    _llama("llama-tiny", kv_heads=2, **_TINY),
    ModelSpec("gpt2-tiny", "gpt2", kv_heads=4, activation="gelu_tanh",
              tie_embeddings=True, **_TINY),
    ModelSpec("opt-tiny", "gpt2", kv_heads=4, activation="relu", tie_embeddings=True,
              position_offset=2, family="opt", **_TINY),
    # real sizes, shapes-only
    _llama("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, weights=False),
    _llama("llama2-13b", 40, 5120, 40, 40, 13824, 32000, 4096, weights=False),
    _llama("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096, weights=False),
    _llama("llama-68m", 2, 768, 12, 12, 3072, 32000, 2048, weights=False),
    _llama("llama-160m", 12, 768, 12, 12, 3072, 32000, 2048, weights=False),
    _llama("smollm2-135m", 30, 576, 9, 3, 1536, 49152, 8192, weights=False,
           tie_embeddings=True, rope_theta=100000.0),
    _opt("opt-125m", 12, 768, 12, 3072),
    _opt("opt-1.3b", 24, 2048, 32, 8192),
    _opt("opt-6.7b", 32, 4096, 32, 16384),
    _opt("opt-13b", 40, 5120, 40, 20480),
    # Added for the model-pair suite (speccc/dse/suite.toml). Dims from the published
    # configs: facebook/opt-66b config.json (as mirrored in mit-han-lab/opt-66b-smoothquant:
    # 64 layers, hidden 9216, 72 heads, ffn_dim 36864, vocab 50272); OPT-175B from the OPT
    # paper (Zhang et al. 2022, arXiv 2205.01068, Table 1: 96 layers, 96 heads, d_model
    # 12288; FFN 4 x d_model like every OPT size); meta-llama/Llama-3.2-1B and
    # Llama-3.1-70B config.json (16/80 layers, hidden 2048/8192, 32/64 heads, 8 kv heads,
    # intermediate 8192/28672, vocab 128256, rope_theta 500000; the 1B ties its
    # embeddings). Llama 3's rope scaling is not modelled: shapes-only, costs unchanged.
    _opt("opt-66b", 64, 9216, 72, 36864),
    _opt("opt-175b", 96, 12288, 96, 49152),
    _llama("llama3.2-1b", 16, 2048, 32, 8, 8192, 128256, 131072, weights=False,
           tie_embeddings=True, rope_theta=500000.0),
    _llama("llama3.1-70b", 80, 8192, 64, 8, 28672, 128256, 131072, weights=False,
           rope_theta=500000.0),
)}


def example_inputs(name: str | ModelSpec, mode: str | None = None, T: int = 1, P: int = 0,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for a zoo model: token ids, positions P..P+T-1 and, in decode mode,
    random past keys/values of length P (float32), keyed by the ONNX input names."""
    spec = get_spec(name)
    mode = mode or spec.mode
    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, spec.vocab, (1, T)).astype(np.int64),
             "position_ids": np.arange(P, P + T, dtype=np.int64)[None]}
    if mode == "decode":
        for i in range(spec.layers):
            for kv in ("key", "value"):
                feeds[f"past_key_values.{i}.{kv}"] = rng.standard_normal(
                    (1, spec.kv_heads, P, spec.head_dim)).astype(np.float32)
    return feeds


def list_models() -> list[str]:
    """Preset names, in declaration order (tiny first)."""
    return list(PRESETS)


def get_spec(name: str | ModelSpec, **overrides) -> ModelSpec:
    """The preset `name` (or a given spec) with fields overridden."""
    if isinstance(name, ModelSpec):
        return name.replace(**overrides)
    if name not in PRESETS:
        raise SpecccError(f"unknown zoo model {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def build(name: str | ModelSpec, **overrides) -> onnx.ModelProto:
    """Build preset `name` (or a ModelSpec) with ModelSpec fields overridden, e.g.
    build("llama-tiny", mode="decode", seed=3), build("llama2-7b")."""
    spec = get_spec(name, **overrides)
    if spec.weights and spec.param_bytes() > MAX_WEIGHT_BYTES:
        raise SpecccError(f"{spec.name} has {spec.param_count():,} parameters "
                          f"({spec.param_bytes() / 2**30:.1f} GiB): too large to hold in "
                          "one ONNX protobuf; build it with weights=False (shapes-only)")
    return build_model(spec)


def pair_specs(base: str | ModelSpec = "llama-tiny", extra_layers: int = 1,
               residual_scale: float = 0.1, seed: int = 0,
               **overrides) -> tuple[ModelSpec, ModelSpec]:
    """Specs of build_pair's (draft, target)."""
    if extra_layers < 0:
        raise SpecccError(f"extra_layers must be >= 0, got {extra_layers}")
    draft = get_spec(base, seed=seed, **overrides)
    target = draft.replace(name=f"{draft.name}+{extra_layers}x{residual_scale:g}",
                           layers=draft.layers + extra_layers, scaled_layers=extra_layers,
                           residual_scale=float(residual_scale))
    return draft, target


def build_pair(base: str | ModelSpec = "llama-tiny", extra_layers: int = 1,
               residual_scale: float = 0.1, seed: int = 0,
               **overrides) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(draft, target) with controllable agreement.

    The draft is `base`. The target is the draft's layers (bit-identical weights: parameter
    values depend only on seed and name) followed by `extra_layers` more layers whose
    attention and MLP output projections are scaled by `residual_scale`. With 0 the extra
    layers add exactly zero to the residual stream, so logits are identical (greedy
    agreement 100%); larger scales perturb the target and lower agreement: with one extra
    layer, serial gamma=4 greedy acceptance is 0.45-0.9 at the default 0.1, 0.35-0.6 at
    0.2 (over seeds and prompts, every tiny arch). Same vocab, same interface;
    the target has `extra_layers` more present/past KV pairs.
    """
    draft, target = pair_specs(base, extra_layers, residual_scale, seed, **overrides)
    return build(draft), build(target)


def param_count(model: onnx.ModelProto) -> int:
    """Elements in all initializers (all of them are parameters; data not needed)."""
    return sum(int(np.prod(t.dims, dtype=np.int64)) for t in model.graph.initializer)


def is_shapes_only(model: onnx.ModelProto) -> bool:
    return any(t.data_location == TensorProto.EXTERNAL and not t.raw_data
               for t in model.graph.initializer)


def check(model: onnx.ModelProto, *, full_check: bool = True) -> None:
    """onnx.checker (+ strict shape inference when full_check) without any weight data;
    see speccc.frontend.onnx_import_checks.check_without_data."""
    from speccc.frontend.onnx_import_checks import check_without_data
    check_without_data(model, full_check=full_check)


def save(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write `model` atomically (temp file + rename). Shapes-only models stay data-less."""
    from speccc.fileio import write_bytes_atomic
    write_bytes_atomic(path, model.SerializeToString())
