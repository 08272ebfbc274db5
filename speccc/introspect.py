"""What a model is, for `speccc info` and `speccc inputs`: its interface, ops, KV cache,
parameters and what fused; and seeded example inputs for it.

    info = describe("tiny.onnx")            # dict (the CLI prints it or dumps it as JSON)
    feeds = example_feeds("tiny.onnx", {"T": 1, "P": 16}, seed=0)   # ONNX name -> array
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from speccc.errors import SpecccError

# Fused LLM ops whose count per layer says whether a layer fused (fuse pass patterns).
PER_LAYER = {"attention": "attention", "gated_mlp": "gated MLP (SwiGLU/GeGLU)"}


def _load(path):
    """(ONNX input names in order, the module after the canonical pipeline, ONNX
    metadata)."""
    from speccc.driver import load_any
    from speccc.pipeline import run_canonical
    module = load_any(path, shapes_only=True)
    run_canonical(module)
    names, meta = None, {}
    if not str(path).endswith(".ir"):
        from speccc.frontend.onnx_import import load_model
        model = load_model(path)
        init = {t.name for t in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in init]
        meta = {p.key: p.value for p in model.metadata_props}
    return names, module, meta


def describe(path) -> dict:
    from speccc import modelinfo
    names, module, meta = _load(path)
    g = next(iter(module))
    args = [a.result for a in g.arguments]
    ops = Counter(op.name for op in g.ops() if op.name not in ("weight", "const"))
    params = sum(int(op.result.type.numel()) for op in g.ops() if op.name == "weight"
                 and isinstance(op.result.type.numel(), int))
    kv = g.attrs.get("kv_cache") or []
    layers = len(kv) // 2
    fused = {}
    for op, what in PER_LAYER.items():
        if layers and ops.get(op, 0) < layers and (op == "attention" or ops.get(op)):
            fused[what] = f"{ops.get(op, 0)} of {layers} layers fused"
        elif layers and ops.get(op):
            fused[what] = f"all {layers} layers"
    return {
        "model": str(path), "graph": g.name,
        "inputs": [{"name": (names[i] if names and i < len(names) else v.name),
                    "type": str(v.type)} for i, v in enumerate(args)],
        "outputs": [{"name": n, "type": str(v.type)} for n, v in
                    zip(g.output_names, g.outputs)],
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": params,
        "kv_cache": [{"past": p, "present": q, "axis": a} for p, q, a in kv],
        "vocab": _safe(lambda: modelinfo.vocab(g)),
        "max_context": _safe(lambda: modelinfo.max_context(g, meta)),
        "fused": fused,
    }


def _safe(fn):
    try:
        return fn()
    except SpecccError:
        return None


def example_feeds(path, bindings: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs of every graph input, keyed by the ONNX input names: token ids below
    the vocabulary, positions P..P+T-1 for `position_ids`, N(0,1) floats (past KV, other
    activations), zeros for other integers. Symbolic dims take `bindings` (T defaults to
    1, P to 0, other symbols to 1)."""
    from speccc import modelinfo
    from speccc.ir.types import dim_eval
    names, module, _ = _load(path)
    g = next(iter(module))
    env = {"T": 1, "P": 0, **bindings}
    rng = np.random.default_rng(seed)
    vocab = _safe(lambda: modelinfo.vocab(g)) or 2
    out = {}
    for i, a in enumerate(g.arguments):
        t = a.result.type
        shape = []
        for d in t.shape:
            v = dim_eval(d, {**{s: 1 for s in t.symbols}, **env})
            if not isinstance(v, int) or v < 0:
                raise SpecccError(f"input {a.result.name}: dimension {d} is {v} under "
                                  f"--bind {','.join(f'{k}={v}' for k, v in env.items())}")
            shape.append(v)
        name = names[i] if names and i < len(names) else a.result.name
        np_dtype = t.dtype.numpy
        if name == "position_ids" or a.result.name == "position_ids":
            arr = np.broadcast_to(np.arange(env["P"], env["P"] + shape[-1]), shape)
        elif t.dtype.is_float:
            arr = rng.standard_normal(shape)
        elif "ids" in name:
            arr = rng.integers(0, vocab, shape)
        else:
            arr = np.zeros(shape)
        out[name] = np.ascontiguousarray(arr).astype(np_dtype)
    return out
