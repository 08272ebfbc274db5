"""Export tiny random-weight Hugging Face causal LMs to ONNX with the dynamo exporter.

    export(family, mode, out_dir=None) -> Path       # cached .onnx (weights embedded)
    make_inputs(family, mode, T, P=0, seed=0)        # {input name: np.ndarray}
    reference_outputs(path, inputs)                  # {output name: np.ndarray} via onnxruntime
    torch_outputs(family, mode, inputs)              # same, from the PyTorch model itself

    python -m tests.exports.hf_export --inventory    # export all 12, print the op inventory

Families: gpt2 opt llama qwen2 mistral phi3. Every model is 2 layers, hidden 64, 4 heads
(2 KV heads where the family has GQA: llama qwen2 mistral phi3), intermediate 128,
vocab 256, 128 positions, fp32, weights from torch.manual_seed(family index) with init std
0.1 and every constant parameter (zero biases, unit norm weights) jittered, so the graph
looks like a trained checkpoint's. Nothing is downloaded.

Modes (batch is always 1; T and P are dynamic and named "T" and "P" in the graph):
    prefill  inputs  input_ids [1,T] i64, position_ids [1,T] i64
             outputs logits [1,T,V]
    decode   inputs  input_ids [1,T], position_ids [1,T],
                     past_key_values.{i}.key / .value [1,G,P,D] f32 for each layer i
             outputs logits [1,T,V], present.{i}.key / .value [1,G,P+T,D]
No attention_mask input: every family builds its causal mask from the sequence lengths.
Decode needs P >= 1 (the exporter specializes a dimension of size 0).

Exports are cached: the file name carries a fingerprint of the family, mode, tiny config,
library versions and this file's source, so an edit here or a version bump re-exports and
anything else is a cache hit. The cache directory is `out_dir`, else $SPECCC_EXPORT_CACHE,
else ~/.cache/speccc-exports. Files are written atomically (safe under pytest-xdist).

torch / transformers / onnxscript are imported lazily: make_inputs and reference_outputs
need only numpy and onnxruntime.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FAMILIES = ("gpt2", "opt", "llama", "qwen2", "mistral", "phi3")
MODES = ("prefill", "decode")
OPSET = 18
SEED = 0
ATTN_IMPLEMENTATION = "sdpa"  # the transformers default; "eager" is the other common choice

LAYERS, HIDDEN, HEADS, INTERMEDIATE, VOCAB, MAX_POS = 2, 64, 4, 128, 256, 128
HEAD_DIM = HIDDEN // HEADS
INIT_STD = 0.1  # weight init std (transformers default 0.02 gives ~0.1-sized logits)
GQA_FAMILIES = ("llama", "qwen2", "mistral", "phi3")

# Example sizes used for tracing: >= 2 and distinct, so torch.export neither specializes
# nor unifies the dynamic dims.
_TRACE_T = {"prefill": 8, "decode": 5}
_TRACE_P = 3


@dataclass(frozen=True)
class Spec:
    """Shapes of one tiny model, known without importing transformers."""
    family: str
    layers: int = LAYERS
    heads: int = HEADS
    kv_heads: int = HEADS
    head_dim: int = HEAD_DIM
    vocab: int = VOCAB


def spec(family: str) -> Spec:
    _check(family)
    return Spec(family, kv_heads=2 if family in GQA_FAMILIES else HEADS)


def _check(family: str, mode: str | None = None) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def input_names(family: str, mode: str) -> list[str]:
    _check(family, mode)
    names = ["input_ids", "position_ids"]
    if mode == "decode":
        names += [f"past_key_values.{i}.{kv}" for i in range(spec(family).layers)
                  for kv in ("key", "value")]
    return names


def output_names(family: str, mode: str) -> list[str]:
    _check(family, mode)
    names = ["logits"]
    if mode == "decode":
        names += [f"present.{i}.{kv}" for i in range(spec(family).layers)
                  for kv in ("key", "value")]
    return names


# ---------------------------------------------------------------------------------------
# Inputs and onnxruntime reference (numpy only)

def make_inputs(family: str, mode: str, T: int, P: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """Random token ids, positions P..P+T-1 and (decode) random past K/V ~ N(0, 1)."""
    _check(family, mode)
    if mode == "prefill" and P != 0:
        raise ValueError("prefill has no past: P must be 0")
    if mode == "decode" and P < 1:
        raise ValueError("decode needs P >= 1")
    if T < 1 or P + T > MAX_POS:
        raise ValueError(f"need 1 <= T and P + T <= {MAX_POS}")
    s = spec(family)
    rng = np.random.default_rng(seed)
    out = {"input_ids": rng.integers(0, s.vocab, size=(1, T), dtype=np.int64),
           "position_ids": np.arange(P, P + T, dtype=np.int64)[None, :]}
    for name in input_names(family, mode)[2:]:
        out[name] = rng.standard_normal((1, s.kv_heads, P, s.head_dim)).astype(np.float32)
    return out


@functools.lru_cache(maxsize=None)
def _ort_session(path: str):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def reference_outputs(path: str | os.PathLike, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the ONNX file in onnxruntime; {output name: array}."""
    sess = _ort_session(str(Path(path).resolve()))
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


# ---------------------------------------------------------------------------------------
# PyTorch side

def hf_config(family: str):
    """The tiny transformers config of `family` (fp32, sdpa attention)."""
    _check(family)
    import transformers as tf
    s = spec(family)
    common = dict(vocab_size=VOCAB)  # tie_word_embeddings: each family's default (gpt2/opt tie)
    if family == "gpt2":
        cfg = tf.GPT2Config(n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_inner=INTERMEDIATE,
                            n_positions=MAX_POS, bos_token_id=0, eos_token_id=0, **common)
    elif family == "opt":
        cfg = tf.OPTConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                           ffn_dim=INTERMEDIATE, word_embed_proj_dim=HIDDEN,
                           max_position_embeddings=MAX_POS, **common)
    else:
        cls = {"llama": tf.LlamaConfig, "qwen2": tf.Qwen2Config,
               "mistral": tf.MistralConfig, "phi3": tf.Phi3Config}[family]
        extra = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
        cfg = cls(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  num_key_value_heads=s.kv_heads, head_dim=HEAD_DIM,
                  intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POS,
                  **extra, **common)
        # mistral keeps its default sliding_window (4096 > MAX_POS: a no-op, but it is in
        # the mask computation as in real Mistral checkpoints).
    # Larger init than the default 0.02 so logits are O(1) and comparisons mean something.
    cfg.initializer_range = INIT_STD
    if family == "opt":
        cfg.init_std = INIT_STD
    cfg.use_cache = True
    return cfg


@functools.lru_cache(maxsize=None)
def build_model(family: str):
    """The tiny model with deterministic random weights (eval mode, fp32)."""
    import torch
    from transformers import AutoModelForCausalLM
    cfg = hf_config(family)
    torch.manual_seed(SEED + FAMILIES.index(family))  # llama and mistral differ
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation=ATTN_IMPLEMENTATION)
    model = model.float().eval()
    # Fresh init leaves biases at 0 and norm weights at 1. The exporter's optimizer would then
    # drop the zero biases (Gemm without C) and merge identical initializers, which no real
    # checkpoint does; jitter every constant parameter so the graph looks like a trained one.
    with torch.no_grad():
        for p in model.parameters():
            flat = p.reshape(-1)
            if flat.numel() and bool((flat == flat[0]).all()):
                p.add_(torch.randn_like(p) * 0.1)
    return model


# Draft/target pairs for speculative decoding (role "draft" / "target"). The tiny init gives
# logits of std ~INIT_STD * sqrt(HIDDEN) = 0.8: near uniform over 256 tokens, so no draft
# is ever confident. As speccc.zoo does (ModelSpec.logit_std), the draft raises its final
# norm's gain until logits have std PAIR_LOGIT_STD, peaked like a small trained LM; the
# target is the draft with seeded relative noise on every weight matrix, so the two agree
# on most tokens but not all.
PAIR_LOGIT_STD = 4.0
PAIR_NOISE = {"gpt2": 0.1, "llama": 0.1}
FINAL_NORM = {"gpt2": "transformer.ln_f", "opt": "model.decoder.final_layer_norm"}


@functools.lru_cache(maxsize=None)
def pair_model(family: str, role: str):
    """The draft or the target of `family`'s pair (a modified copy of build_model)."""
    import copy

    import torch
    if role not in ("draft", "target"):
        raise ValueError(f"role must be draft or target, got {role!r}")
    model = copy.deepcopy(build_model(family))
    gen = torch.Generator().manual_seed(SEED + FAMILIES.index(family))
    with torch.no_grad():
        norm = model.get_submodule(FINAL_NORM.get(family, "model.norm"))
        norm.weight.mul_(PAIR_LOGIT_STD / (INIT_STD * HIDDEN ** 0.5))
        if role == "target":
            for p in model.parameters():
                if p.dim() >= 2:
                    p.add_(torch.randn(p.shape, generator=gen) * p.std() * PAIR_NOISE[family])
    return model


def _wrapper(family: str, mode: str, role: str | None = None):
    """An nn.Module with flat tensor inputs/outputs in the order of input_names/output_names
    (the model of build_model, or with `role` the draft or target of pair_model)."""
    import torch
    from transformers import DynamicCache

    model = build_model(family) if role is None else pair_model(family, role)
    layers = spec(family).layers

    def present(cache, i):
        if hasattr(cache, "layers"):            # transformers >= 4.56
            return cache.layers[i].keys, cache.layers[i].values
        return cache.key_cache[i], cache.value_cache[i]

    class Prefill(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, position_ids):
            return self.model(input_ids=input_ids, position_ids=position_ids,
                              use_cache=False).logits

    class Decode(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, position_ids, *past):
            cache = DynamicCache()
            for i in range(layers):
                cache.update(past[2 * i], past[2 * i + 1], i)
            out = self.model(input_ids=input_ids, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            flat = [out.logits]
            for i in range(layers):
                flat.extend(present(out.past_key_values, i))
            return tuple(flat)

    return (Prefill if mode == "prefill" else Decode)().eval()


def torch_outputs(family: str, mode: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the PyTorch model on make_inputs-style inputs; {output name: array}."""
    import torch
    args = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in input_names(family, mode)]
    with torch.no_grad():
        out = _wrapper(family, mode)(*args)
    out = (out,) if mode == "prefill" else out
    return {n: t.detach().numpy() for n, t in zip(output_names(family, mode), out)}


# ---------------------------------------------------------------------------------------
# Export

def cache_root() -> Path:
    env = os.environ.get("SPECCC_EXPORT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "speccc-exports"


def versions() -> dict[str, str]:
    import onnx
    import onnxscript
    import torch
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnx": onnx.__version__, "onnxscript": onnxscript.__version__}


def fingerprint(family: str, mode: str, role: str | None = None, static: bool = False) -> str:
    blob = json.dumps({
        "family": family, "mode": mode, "role": role, "static": static, "opset": OPSET,
        "seed": SEED,
        "attn": ATTN_IMPLEMENTATION, "spec": asdict(spec(family)),
        "config": hf_config(family).to_dict(), "versions": versions(),
        "source": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def export(family: str, mode: str, out_dir: str | os.PathLike | None = None, *,
           force: bool = False, role: str | None = None, static: bool = False) -> Path:
    """Export (or find in the cache) `family` in `mode` (with `role`: the draft or target
    of its pair, see pair_model); return the .onnx path. `static`: no dynamic dims (T and
    P fixed at the trace sizes), so the exporter folds the causal mask to constants.

    A JSON sidecar next to it records the export wall time, versions and I/O names.
    """
    _check(family, mode)
    out_dir = Path(out_dir) if out_dir is not None else cache_root()
    name = (f"{family}-{role}" if role else family) + ("-static" if static else "")
    path = out_dir / f"{name}-{mode}-{fingerprint(family, mode, role, static)}.onnx"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not force:
        return path
    out_dir.mkdir(parents=True, exist_ok=True)

    import torch
    from torch.export import Dim

    wrapper = _wrapper(family, mode, role)
    T, P = _TRACE_T[mode], (_TRACE_P if mode == "decode" else 0)
    example = make_inputs(family, mode, T, P, seed=SEED)
    args = tuple(torch.from_numpy(example[n]) for n in input_names(family, mode))
    t_dim = Dim("T", min=1, max=MAX_POS)
    dynamic_shapes = {"input_ids": {1: t_dim}, "position_ids": {1: t_dim}}
    if mode == "decode":
        p_dim = Dim("P", min=1, max=MAX_POS - 1)
        dynamic_shapes["past"] = tuple({2: p_dim} for _ in args[2:])

    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_dir)
    os.close(fd)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, args, tmp, dynamo=True, opset_version=OPSET,
                              dynamic_shapes=None if static else dynamic_shapes,
                              external_data=False,
                              input_names=input_names(family, mode),
                              output_names=output_names(family, mode), verbose=False)
        seconds = time.perf_counter() - start
        meta = {"family": family, "mode": mode, "export_seconds": round(seconds, 2),
                "opset": OPSET, "attn_implementation": ATTN_IMPLEMENTATION,
                "versions": versions(), "inputs": input_names(family, mode),
                "outputs": output_names(family, mode), "spec": asdict(spec(family))}
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    tmp_meta = meta_path.with_name(meta_path.name + f".{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp_meta, meta_path)
    return path


class _quiet:
    """Silence the exporter's progress prints and log warnings (errors still propagate)."""

    def __enter__(self):
        import contextlib
        import io
        import logging
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        self._cm = contextlib.redirect_stdout(io.StringIO())
        self._cm.__enter__()

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return self._cm.__exit__(*exc)


def export_seconds(path: str | os.PathLike) -> float | None:
    meta = Path(path).with_suffix(".json")
    return json.loads(meta.read_text()).get("export_seconds") if meta.exists() else None


# ---------------------------------------------------------------------------------------
# Inventory

def op_inventory(path: str | os.PathLike) -> set[tuple[str, str, int]]:
    """{(domain, op_type, opset version imported for that domain)} over the graph,
    its subgraphs and any model-local functions. Domain "" is ai.onnx."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    opsets = {o.domain or "": o.version for o in model.opset_import}
    found: set[tuple[str, str, int]] = set()

    def walk(nodes):
        for node in nodes:
            dom = node.domain or ""
            found.add((dom, node.op_type, opsets.get(dom, -1)))
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g.node)
                for g in attr.graphs:
                    walk(g.node)

    walk(model.graph.node)
    for fn in model.functions:
        walk(fn.node)
    return found


def io_dims(path: str | os.PathLike) -> dict[str, list]:
    """{input/output name: [dim value or symbolic name]}."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(model.graph.input) + list(model.graph.output)}


def _since(domain: str, op_type: str, opset: int) -> str:
    """The version of the op's schema in effect at `opset` (e.g. Softmax-13 at opset 18)."""
    import onnx.defs
    try:
        return str(onnx.defs.get_schema(op_type, opset, domain).since_version)
    except Exception:  # unknown (custom-domain) op
        return "?"


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.exports.hf_export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inventory", action="store_true",
                    help="export all families x modes and print the ONNX op inventory")
    ap.add_argument("--out-dir", default=None, help="cache directory (default: %(default)s -> "
                    "$SPECCC_EXPORT_CACHE or ~/.cache/speccc-exports)")
    ap.add_argument("--force", action="store_true", help="re-export even if cached")
    ap.add_argument("--family", action="append", choices=FAMILIES)
    ap.add_argument("--mode", action="append", choices=MODES)
    ns = ap.parse_args(argv)
    families, modes = ns.family or FAMILIES, ns.mode or MODES

    union: dict[tuple[str, str, int], list[str]] = {}
    total = 0.0
    for family in families:
        for mode in modes:
            start = time.perf_counter()
            path = export(family, mode, ns.out_dir, force=ns.force)
            wall = time.perf_counter() - start
            total += wall
            secs = export_seconds(path)
            print(f"== {family}/{mode}: {path}")
            print(f"   export {secs:.2f}s (this run {wall:.2f}s wall)" if secs is not None
                  else f"   this run {wall:.2f}s")
            if ns.inventory:
                ops = op_inventory(path)
                for key in ops:
                    union.setdefault(key, []).append(f"{family}/{mode}")
                print("   ops: " + " ".join(
                    f"{d or 'ai.onnx'}::{o}-{v}" for d, o, v in sorted(ops)))
                print("   io:  " + "; ".join(f"{n}{dims}" for n, dims in io_dims(path).items()))
    print(f"total wall {total:.2f}s for {len(families) * len(modes)} models")
    if ns.inventory:
        n = len(families) * len(modes)
        print(f"\nunion ({len(union)} ops; domain, op_type, opset, schema since, used by):")
        for (d, o, v), users in sorted(union.items()):
            who = "all" if len(users) == n else ", ".join(users)
            print(f"  {d or 'ai.onnx'}\t{o}\t{v}\t{_since(d, o, v)}\t{who}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
