"""One model resolver for every command that takes a model (compile, run, exec, dse,
baseline): an ONNX (or .ir) file, or a zoo name.

    ref = resolve("llama2-7b")        # ZooModel: built in memory on first use
    ref = resolve("m.onnx")           # the path, unchanged
    ref = resolve("smollm2")          # a GGUF zoo model: its cached .onnx path
    path = resolve_path("llama2-7b")  # always a file path (a private temp file for names)

An existing file wins over a zoo name of the same spelling. Real-size presets build
shapes-only in fp16 (costed as stored); presets with weights (llama-tiny, ...) keep them.
Everything is built in decode mode (past KV inputs), the interface `run` and `dse` need.
"""
from __future__ import annotations

import atexit
import difflib
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from speccc.errors import SpecccError

HELP = "ONNX file or zoo name (speccc zoo --list)"


@dataclass(frozen=True)
class ZooModel:
    """A zoo preset standing in for a model file; str() is its name (reports, errors)."""
    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self):
        return _spec(self.name)

    @property
    def shapes_only(self) -> bool:
        return not self.spec.weights

    def proto(self):
        """The ONNX ModelProto (built once per process)."""
        return _build(self.name)


def _spec(name: str):
    from speccc.zoo.presets import get_spec
    spec = get_spec(name, mode="decode")
    return spec if spec.weights else spec.replace(dtype="float16")


@lru_cache(maxsize=8)
def _build(name: str):
    from speccc.zoo.presets import build
    return build(_spec(name))


def zoo_names() -> list[str]:
    """Every name `resolve` accepts besides files: presets, then GGUF models."""
    from speccc.zoo.presets import list_models
    from speccc.zoo.smollm2 import GGUF_MODELS
    return [*list_models(), *GGUF_MODELS]


def resolve(name):
    """A path (str) or ZooModel for `name`; None stays None; a ZooModel passes through."""
    if name is None or isinstance(name, ZooModel):
        return name
    name = str(name)
    if Path(name).exists():
        return name
    from speccc.zoo.presets import PRESETS
    from speccc.zoo.smollm2 import GGUF_MODELS, model_path
    if name in GGUF_MODELS:
        return str(model_path(name))
    if name in PRESETS:
        return ZooModel(name)
    raise SpecccError(unknown_message(name))


def unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, zoo_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{name}: no such file or zoo model{hint} (speccc zoo --list)"


def load_proto(ref):
    """(ModelProto, source label, base dir for external data or None) of a resolved ref."""
    if isinstance(ref, ZooModel):
        return ref.proto(), ref.name, None
    from speccc.frontend.onnx_import_checks import load_model
    return load_model(ref), str(ref), str(Path(ref).parent)


_TEMP_DIR: list = []


def resolve_path(name) -> str:
    """Like `resolve`, but always a file path: a zoo preset is written (once per process)
    to a private temp directory removed at exit. For callers that need a path (remote
    workers, other tools); the commands themselves use `resolve`."""
    ref = resolve(name)
    if not isinstance(ref, ZooModel):
        return ref
    if not _TEMP_DIR:
        _TEMP_DIR.append(tempfile.mkdtemp(prefix="speccc-zoo-"))
        atexit.register(shutil.rmtree, _TEMP_DIR[0], True)
    path = os.path.join(_TEMP_DIR[0], f"{ref.name}.onnx")
    if not os.path.exists(path):
        from speccc.zoo.presets import save
        save(ref.proto(), path)
    return path
