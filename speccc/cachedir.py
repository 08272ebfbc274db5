"""speccc's on-disk cache: one folder, shared by everything that caches.

    cache_dir("calibration")   # <root>/calibration (root below)

Where: `$SPECCC_CACHE` if set, else `$XDG_CACHE_HOME/speccc` (XDG base directory spec:
a relative XDG_CACHE_HOME is ignored), else `~/.cache/speccc`. Users: `KINDS` below
(zoo/, calibration/, dse/, tokenizer/).

`SPECCC_NO_CACHE=1` turns off the entries below (`read_entry` / `write_entry`: nothing is
read or written, each process recomputes); zoo models are still built into zoo/, as
commands need them as files. A cache entry is only ever a speedup: an entry that cannot be read or
parsed counts as a miss, and a cache folder that cannot be written is skipped silently.
Entries are written to a temp file beside the target and renamed over it, so a reader
sees the old entry or the new one, never a torn file (no fsync: a lost entry is
recomputed).

Housekeeping (`speccc cache info|clear|prune`): `KINDS` lists each folder, what writes
it and the names its entries have; only regular files with those names (and writers'
temp files over an hour old) are ever removed, and a root holding anything else is
refused as not speccc's. `SPECCC_CACHE_MAX_MB=N` caps the whole folder: each
`write_entry` (calibration entries) then evicts the oldest-written entries of every kind
until the total fits.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from speccc.errors import SpecccError

CACHE_ENV, XDG_ENV, DISABLE_ENV = "SPECCC_CACHE", "XDG_CACHE_HOME", "SPECCC_NO_CACHE"
MAX_MB_ENV = "SPECCC_CACHE_MAX_MB"


@dataclass(frozen=True)
class CacheKind:
    name: str
    entry: re.Pattern        # the file names its writer gives entries
    what: str


KINDS = (
    CacheKind("calibration", re.compile(r"[0-9a-f]{32}\.json"),
              "PIM GEMV runs emulated once per machine (targets/pim/cost.py)"),
    CacheKind("dse", re.compile(r"[0-9a-f]{32}\.pkl"),
              "speccc dse price tables (speccc/dse/diskcache.py)"),
    CacheKind("zoo", re.compile(r"[A-Za-z0-9._-]+-[0-9a-f]{16}\.onnx"),
              "GGUF models converted to ONNX (speccc/zoo/smollm2.py)"),
    CacheKind("tokenizer", re.compile(r"[0-9a-f]{32}\.json"),
              "GGUF tokenizer metadata read once per file (speccc/tokenizer.py)"),
)
KIND_NAMES = tuple(k.name for k in KINDS)
# a writer's temp file (`.ENTRY.XXXXXXXX.tmp`, cachedir and fileio alike); one younger
# than this may be a write in progress, so it is left alone
_TEMP = re.compile(r"\..+\.tmp")
TEMP_MIN_AGE_S = 3600


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
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return False
    cap = max_cache_bytes()
    if cap is not None:
        try:
            prune(cap, keep=path)
        except (NotSpecccCacheError, OSError):
            pass                 # a folder that is not only speccc's is never pruned
    return True


def _umask() -> int:
    mask = os.umask(0)   # the only way to read the umask is to set it
    os.umask(mask)
    return mask


# ----------------------------------------------------------------- housekeeping --
class NotSpecccCacheError(SpecccError):
    """The cache folder holds something speccc does not write: nothing is removed."""


@dataclass(frozen=True)
class CacheFile:
    path: Path
    bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class KindUsage:
    kind: CacheKind
    folder: Path
    entries: tuple[CacheFile, ...]  # speccc's own files: entries and stale temp files
    others: int                     # files under the folder speccc did not name (left alone)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.entries)


def check_cache_root(root: Path) -> None:
    """Refuse (NotSpecccCacheError) a root that is not a folder, or that holds anything
    but the KINDS' folders: `SPECCC_CACHE=$HOME` must not let `clear` touch $HOME."""
    if not root.exists():
        return
    if not root.is_dir():
        raise NotSpecccCacheError("not a folder, so not speccc's cache", location=str(root))
    for child in sorted(root.iterdir()):
        if child.name not in KIND_NAMES or child.is_symlink() or not child.is_dir():
            raise NotSpecccCacheError(
                f"holds {child.name!r}, which speccc does not write there (it writes only "
                f"{', '.join(k + '/' for k in KIND_NAMES)}): not speccc's cache, left alone",
                location=str(root))


def usage(root: Path | None = None, kinds=KIND_NAMES) -> list[KindUsage]:
    """Each kind's own files under a checked root (a missing folder has none)."""
    root = cache_root() if root is None else root
    check_cache_root(root)
    now = time.time()
    out = []
    for kind in KINDS:
        if kind.name not in kinds:
            continue
        folder, mine, others = root / kind.name, [], 0
        if folder.is_dir():
            with os.scandir(folder) as it:
                for e in it:
                    if not e.is_file(follow_symlinks=False):
                        others += 1
                        continue
                    st = e.stat(follow_symlinks=False)
                    if kind.entry.fullmatch(e.name) or (
                            _TEMP.fullmatch(e.name) and now - st.st_mtime > TEMP_MIN_AGE_S):
                        mine.append(CacheFile(Path(e.path), st.st_size, st.st_mtime_ns))
                    else:
                        others += 1
        out.append(KindUsage(kind, folder, tuple(sorted(mine, key=lambda f: f.path)), others))
    return out


def clear(root: Path | None = None, kinds=KIND_NAMES) -> tuple[int, int]:
    """Remove the given kinds' own files (and their folders, once empty): (files, bytes)."""
    files = size = 0
    for u in usage(root, kinds):
        for f in u.entries:
            size += _remove(f.path)
            files += 1
        if u.folder.is_dir() and not any(u.folder.iterdir()):
            u.folder.rmdir()
    return files, size


def prune(max_bytes: int, root: Path | None = None, keep: Path | None = None) -> tuple[int, int]:
    """Evict entries of every kind, oldest written first, until the folder's entries
    total at most max_bytes (`keep`, the entry just written, last of all): (files, bytes)."""
    found = [f for u in usage(root) for f in u.entries]
    total = sum(f.bytes for f in found)
    found.sort(key=lambda f: (f.path == keep, f.mtime_ns))
    files = freed = 0
    for f in found:
        if total <= max_bytes:
            break
        _remove(f.path)
        total, freed, files = total - f.bytes, freed + f.bytes, files + 1
    return files, freed


def max_cache_bytes() -> int | None:
    """SPECCC_CACHE_MAX_MB as bytes, or None if unset."""
    raw = os.environ.get(MAX_MB_ENV, "").strip()
    if not raw:
        return None
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0:                      # also refuses nan
        raise SpecccError(f"{MAX_MB_ENV}={raw!r}: expected a size in MB (a number >= 0)")
    return int(mb * 1e6)


def _remove(f: Path) -> int:
    """Unlink one file: its size, or 0 if another process removed it first."""
    try:
        size = f.stat(follow_symlinks=False).st_size
        f.unlink()
        return size
    except FileNotFoundError:
        return 0
