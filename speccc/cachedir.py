"""speccc's on-disk cache: one folder, shared by everything that caches.

    cache_dir("calibration")   # <root>/calibration (root below)

Where: `$SPECCC_CACHE` if set, else `$XDG_CACHE_HOME/speccc` (XDG base directory spec:
a relative XDG_CACHE_HOME is ignored), else `~/.cache/speccc`. Users: zoo/ (GGUF models
converted once, speccc/zoo/smollm2.py), calibration/ (PIM op costs, targets/pim/cost.py).

`SPECCC_NO_CACHE=1` turns off the entries below (`read_entry` / `write_entry`: nothing is
read or written, each process recomputes); zoo models are still built into zoo/, as
commands need them as files. A cache entry is only ever a speedup: an entry that cannot be read or
parsed counts as a miss, and a cache folder that cannot be written is skipped silently.
Entries are written to a temp file beside the target and renamed over it, so a reader
sees the old entry or the new one, never a torn file (no fsync: a lost entry is
recomputed).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV, XDG_ENV, DISABLE_ENV = "SPECCC_CACHE", "XDG_CACHE_HOME", "SPECCC_NO_CACHE"


def cache_root() -> Path:
    own = os.environ.get(CACHE_ENV)
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get(XDG_ENV)
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "speccc"
    return Path.home() / ".cache" / "speccc"


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root (not created: writers create it on first write)."""
    return cache_root().joinpath(*parts)


def cache_enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("", "0", "false", "no")


def read_entry(path: Path) -> bytes | None:
    """An entry's bytes, or None (missing, unreadable, or the cache is off)."""
    if not cache_enabled():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def write_entry(path: Path, data: bytes) -> bool:
    """Publish an entry atomically (temp file + rename). False if the cache is off or
    the folder cannot be written (read-only home, full disk): caching is best effort."""
    if not cache_enabled():
        return False
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp makes 0600 whatever the umask
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return False


def _umask() -> int:
    mask = os.umask(0)   # the only way to read the umask is to set it
    os.umask(mask)
    return mask
