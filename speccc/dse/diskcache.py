"""Cost tables persisted across `speccc dse` runs: DIR/dse/<key>.pkl under speccc's cache
directory ($SPECCC_CACHE, else $XDG_CACHE_HOME/speccc, else ~/.cache/speccc).

The key is everything the prices depend on: both models (a zoo preset by its spec, a file
by its resolved path, size and mtime), the hardware texts, the cost model, the context at
which fixed mappings are partitioned, and the source of the speccc package (any code
change is a new key: stale prices are worse than a cold sweep). A file holds the
evaluator's forward/KV price table, the capacity verdicts and the few model facts the
closed form needs, so a sweep whose table is complete never loads the models.

Writes are atomic (temp file + rename); concurrent workers may each write, and the last
one wins (a cache, not a record). SPECCC_DSE_CACHE=0 turns it off.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from functools import lru_cache
from pathlib import Path

FORMAT = 1


def cache_root() -> Path:
    if os.environ.get("SPECCC_CACHE"):
        return Path(os.environ["SPECCC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "speccc"


def enabled() -> bool:
    return os.environ.get("SPECCC_DSE_CACHE", "1") != "0"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the Python sources of speccc and of its passes and targets packages
    (which a source checkout keeps beside speccc/, not in it), sorted by path."""
    import speccc
    import speccc.passes
    import speccc.targets
    h = hashlib.sha256()
    for pkg in (speccc, speccc.passes, speccc.targets):
        root = Path(pkg.__file__).resolve().parent
        for f in sorted(root.rglob("*.py")):
            h.update(f"{pkg.__name__}/{f.relative_to(root)}".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _model_identity(name: str) -> dict:
    from speccc.zoo.resolve import ZooModel, resolve
    ref = resolve(name)
    if isinstance(ref, ZooModel):
        return {"zoo": ref.name, "spec": ref.spec.as_dict()}
    p = Path(ref).resolve()
    st = p.stat()
    return {"file": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def study_key(study) -> str:
    ident = {"format": FORMAT, "code": code_fingerprint(),
             "target": _model_identity(study.target), "draft": _model_identity(study.draft),
             "hw": [list(t) for t in study.hw_texts], "cost_model": study.cost_model,
             "partition_p": study.prompt_len + study.max_new_tokens // 2}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def path_for(study) -> Path | None:
    return cache_root() / "dse" / f"{study_key(study)}.pkl" if enabled() else None


def load(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
        return state if isinstance(state, dict) and state.get("format") == FORMAT else {}
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return {}        # a damaged cache file is a cold start, not an error


def save(path: Path | None, state: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from speccc.fileio import write_bytes_atomic
        write_bytes_atomic(path, pickle.dumps({**state, "format": FORMAT}))
    except OSError:
        pass             # an unwritable cache directory only costs speed
