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
