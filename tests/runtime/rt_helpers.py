"""Helpers for the runtime tests (imported by name: tests/runtime is on sys.path)."""
from __future__ import annotations

from speccc import zoo
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.passmanager import PassManager
from speccc.pipeline import run_canonical
from speccc.runtime.runner import RunConfig, simulate


def pair_module(base="llama-tiny", seed=0, residual_scale=0.1, weights=True, **overrides):
    d, t = zoo.build_pair(base, extra_layers=1, residual_scale=residual_scale, seed=seed,
                          mode="decode", weights=weights, **overrides)
    m = import_model(d, ImportOptions(graph_name="draft", shapes_only=not weights))
    import_model(t, ImportOptions(graph_name="target", shapes_only=not weights), module=m)
    run_canonical(m)
    return m


def run(module, spec: str, **cfg):
    """Run `speculate{spec}` then the runtime; cost_model defaults to the roofline."""
    PassManager.parse(f"speculate{{{spec}}}").run(module)
    cfg.setdefault("cost_model", "roofline")
    return simulate(module, RunConfig(**cfg))
