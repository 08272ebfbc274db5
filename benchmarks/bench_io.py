"""Where benchmark scripts put their figures: benchmarks/results/NAME.json, written whole
(a temporary file renamed over the old one, so an interrupted run never leaves half a
file). Scripts run as `python benchmarks/X.py`, so this folder is on sys.path."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(name: str, data, *, indent: int = 1, sort_keys: bool = False) -> Path:
    """benchmarks/results/NAME as JSON plus a final newline; the path written."""
    path = RESULTS_DIR / name
    write_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")
    return path
