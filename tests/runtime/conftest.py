"""Fixtures for the runtime tests: zoo draft/target pairs imported into one module."""
from __future__ import annotations

import pytest
from rt_helpers import pair_module


@pytest.fixture(scope="session")
def pairs():
    """pairs(base, seed, residual_scale, weights) -> module (cached per session)."""
    cache = {}

    def get(base="llama-tiny", seed=0, residual_scale=0.1, weights=True, **kw):
        key = (base, seed, residual_scale, weights, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = pair_module(base, seed, residual_scale, weights, **kw)
        return cache[key]
    return get


@pytest.fixture(scope="session")
def hf_pair():
    """hf_pair(family) -> module of a dynamo-exported Hugging Face draft/target pair
    (tests/exports/hf_export.py pair_model; exports cached on disk, modules per session).
    Skips without the [export] extra."""
    for mod in ("torch", "transformers", "onnxscript"):
        pytest.importorskip(mod)
    from exports import hf_export as hx

    from speccc.runtime.runner import load_pair
    cache = {}

    def get(family: str):
        if family not in cache:
            cache[family] = load_pair(hx.export(family, "decode", role="target"),
                                      hx.export(family, "decode", role="draft"))[0]
        return cache[family]
    return get
