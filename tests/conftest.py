"""Shared pytest fixtures."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hf_export():
    """`hf_export(family, mode) -> Path`: a cached Hugging Face ONNX export (tests/exports).

    Skips when the [export] extra (torch, transformers, onnxscript) is missing. Exports live
    in $SPECCC_EXPORT_CACHE (default ~/.cache/speccc-exports), keyed by config + versions,
    so only the first run pays for torch.onnx.export.
    """
    for mod in ("torch", "transformers", "onnxscript"):
        pytest.importorskip(mod)
    from exports import hf_export as hx

    paths = {}

    def get(family: str, mode: str):
        if (family, mode) not in paths:
            paths[family, mode] = hx.export(family, mode)
        return paths[family, mode]

    return get


@pytest.fixture(scope="session")
def decode_pair(tmp_path_factory):
    """A folder with draft.onnx and target.onnx: the llama-tiny decode pair."""
    from speccc import zoo
    d = tmp_path_factory.mktemp("pair")
    draft, target = zoo.build_pair("llama-tiny", mode="decode")
    zoo.save(draft, d / "draft.onnx")
    zoo.save(target, d / "target.onnx")
    return d
