"""Every fuse filecheck input computes the same before and after `fuse`.

The filecheck tests (tests/filecheck/passes/fuse*.ir) show *what* fuse forms; this runs each
of their graphs through the reference interpreter on random weights and inputs, before and
after `fuse,dce`, for several (T, P) bindings (including ones past the sliding window in
fuse_sliding_window.ir), so each rule's rewrite is checked against the subgraph it replaced.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speccc.ir.interpreter import run_graph
from speccc.ir.parser import parse_file
from speccc.ir.types import dim_eval
from speccc.passmanager import PassManager

FILES = sorted((Path(__file__).parent / "filecheck" / "passes").glob("fuse*.ir"))
BINDINGS = [{"T": 1, "P": 4}, {"T": 5, "P": 3}, {"T": 3, "P": 9}, {"T": 8, "P": 0}]


def _module(path, rng):
    module = parse_file(path)
    for g in module:
        store = module.weights_of(g.name)
        for op in g.ops():
            if op.name == "weight" and not store.has(op.attrs["name"]):
                shape = [int(d) for d in op.result.type.shape]
                store.put(op.attrs["name"],
                                   rng.normal(0, 0.5, shape).astype(np.float32))
    return module


def _inputs(graph, binding, rng):
    out = {}
    for v in graph.inputs:
        shape = [dim_eval(d, binding) for d in v.type.shape]
        if v.type.dtype.value == "i64":  # ids and positions: small non-negative integers
            out[v.name] = np.broadcast_to(np.arange(shape[-1]) % 8, shape).astype(np.int64)
        else:
            out[v.name] = rng.normal(0, 1, shape).astype(np.float32)
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fuse_keeps_semantics(path):
    rng = np.random.default_rng(0)
    before = _module(path, rng)
    after = _module(path, np.random.default_rng(0))
    PassManager.parse("fuse,dce").run(after)
    for name, g0 in before.graphs.items():
        g1 = after.graphs[name]
        assert len(g1) < len(g0), f"@{name}: fuse formed nothing"
        for binding in BINDINGS:
            feeds = _inputs(g0, binding, np.random.default_rng(1))
            want, got = run_graph(g0, feeds, binding), run_graph(g1, feeds, binding)
            for key, ref in want.items():
                err = np.abs(got[key] - ref).max() / max(1.0, float(np.abs(ref).max()))
                assert err <= 1e-5, (name, binding, key, err)
