"""Cost tables persisted across `speccc dse` runs: DIR/dse/<key>.pkl under speccc's cache
directory ($SPECCC_CACHE, else $XDG_CACHE_HOME/speccc, else ~/.cache/speccc).

The key is everything the prices depend on: both models (a zoo preset by its spec, a file
by its resolved path, size and mtime), the hardware texts, the cost model, the context at
which fixed mappings are partitioned, and the source of the speccc package (any code
change is a new key: stale prices are worse than a cold sweep). A file holds the
evaluator's forward/KV price table, the capacity verdicts and the few model facts the
closed form needs, so a sweep whose table is complete never loads the models.

Reads and writes go through speccc.cachedir (one cache root, SPECCC_NO_CACHE, the
SPECCC_CACHE_MAX_MB cap): atomic (temp file + rename); concurrent workers may each write,
and the last one wins (a cache, not a record). SPECCC_DSE_CACHE=0 turns off this kind
alone.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from functools import lru_cache
from pathlib import Path

from speccc import cachedir

FORMAT = 1


def enabled() -> bool:
    return cachedir.cache_enabled() and os.environ.get("SPECCC_DSE_CACHE", "1") != "0"


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
    return cachedir.cache_dir("dse", f"{study_key(study)}.pkl") if enabled() else None


def load(path: Path | None) -> dict:
    data = cachedir.read_entry(path) if path is not None else None
    if data is None:
        return {}
    try:
        state = pickle.load(io.BytesIO(data))
        return state if isinstance(state, dict) and state.get("format") == FORMAT else {}
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return {}        # a damaged cache file is a cold start, not an error


def save(path: Path | None, state: dict) -> None:
    if path is not None:         # best effort: an unwritable cache only costs speed
        cachedir.write_entry(path, pickle.dumps({**state, "format": FORMAT}))
