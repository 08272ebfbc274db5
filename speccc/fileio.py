"""Every file speccc writes goes through here, so how output is published is one decision.

Single files (`write_bytes_atomic`): a temp file beside the target, written, fsynced,
given the mode the umask allows (mkstemp alone gives 0600), then renamed over the target;
a kill leaves the old file or the new one. A target that exists and is not a regular
file (device, FIFO, socket, directory) is refused: renaming over it would replace a
device node or a pipe someone reads from.

Symlinks are followed on purpose: `-o link` writes the file the link points at (the link
stays a link), so the usual "output lives elsewhere" setups work, and a link to a device
is refused like the device itself.

Folders (`write_tree`): the new folder is built in a temp sibling and swapped in whole
(renameat2 RENAME_EXCHANGE where the kernel has it), so a kill leaves the old folder or
the new one, never a mix. `OUT/.speccc-manifest.json` lists what speccc wrote (with
hashes). Everything else in the old folder is the user's and is carried into the new one
(hard links: no copy); a file the previous run wrote and this run does not is dropped
only if the previous manifest lists it and it is unchanged since. A symlink where speccc
writes a file or folder is refused, so nothing is written or removed through it.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath

from speccc.errors import SpecccError
from speccc.textio import check_json_finite, file_kind

MANIFEST = ".speccc-manifest.json"
_TMP_PREFIX = ".speccc-tmp-"

def _umask() -> int:
    mask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


def _file_mode() -> int:
    return 0o666 & ~_umask()


def output_file(path) -> Path:
    """The real path a `-o FILE` write goes to, or a SpecccError: empty path, a target
    (after following symlinks) that is not a regular file, a parent that is a file.
    Commands call this before doing any work, and the writers call it again."""
    if path is None or str(path).strip() == "":
        raise SpecccError("empty output path: give -o a file name")
    target = Path(os.path.realpath(path))
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise SpecccError(f"cannot use as output ({e.strerror})", location=str(path)) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise SpecccError(f"exists and is {file_kind(st.st_mode)}; speccc only replaces regular "
                          "files: choose another -o", location=str(path))
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpecccError(f"{parent} is not a directory", location=str(path))
            break
    return target


def output_dir(path) -> Path:
    """The real path of an output folder, or a SpecccError (empty, exists as a non-dir)."""
    if path is None or str(path).strip() == "":
        raise SpecccError("empty output folder: give -o a folder name")
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_dir():
        raise SpecccError("output exists and is not a directory", location=str(path))
    return real


def _fill(fd: int, data: bytes, mode: int, sync: bool = True) -> None:
    """Write `data` to a fresh file's descriptor, give it `mode`, fsync, close."""
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # mkstemp makes 0600 whatever the umask
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def _write_new(path: Path, data: bytes, mode: int, sync: bool = True) -> None:
    """Create `path` (which must not exist) with `data` (fsynced unless told not to)."""
    _fill(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), data, mode, sync)


def _sync_tree(root: Path, files) -> None:
    """Make a freshly written folder durable before it is swapped in: one syncfs(2) of
    its file system (a 7B compile's 491 fsyncs took 1.4 s), else fsync file by file."""
    fd = os.open(root, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is not None and libc.syncfs(fd) == 0:
            return
    except OSError:
        pass
    finally:
        os.close(fd)
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path, data: bytes) -> None:
    target = output_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        _fill(fd, data, _file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


# ---------------------------------------------------------------- folders ----------
def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(out: Path) -> dict[str, str]:
    """{rel path: sha256} of the previous run, or {} (none, or not one of ours)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _check_rel(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\0" in rel or rel == MANIFEST:
        raise ValueError(f"write_tree: {rel!r} is not a plain relative path")
    return p


def _check_old_paths(out: Path, rels) -> None:
    """Where this run writes, the old folder must hold what speccc would replace: a
    symlink would send the write (or a removal) elsewhere, and a folder or special file
    where a file goes (or a file where a folder goes) is the user's and would be lost."""
    seen = set()
    for rel in rels:
        for depth in range(1, len(rel.parts) + 1):
            part = PurePosixPath(*rel.parts[:depth])
            if part in seen:
                continue
            seen.add(part)
            try:
                mode = os.lstat(out / part).st_mode
            except FileNotFoundError:
                break
            want_dir = depth < len(rel.parts)
            if stat.S_ISLNK(mode):
                why = "is a symlink; speccc does not write through it"
            elif want_dir and not stat.S_ISDIR(mode):
                why = f"is {file_kind(mode)}, where speccc writes a folder"
            elif not want_dir and not stat.S_ISREG(mode):
                why = f"is {file_kind(mode)}, where speccc writes a file"
            else:
                continue
            raise SpecccError(f"{part} {why}: move it or choose another -o", location=str(out))


def _stale(out: Path, old: dict[str, str], new: set[str]) -> set[str]:
    """Files the previous run wrote, this run does not, and nobody changed since."""
    gone = set()
    for rel, digest in old.items():
        try:
            p = _check_rel(rel)
        except ValueError:
            continue
        f = out / p
        if rel in new or any((out / PurePosixPath(*p.parts[:d])).is_symlink()
                             for d in range(1, len(p.parts) + 1)):
            continue
        if f.is_file() and _digest(f.read_bytes()) == digest:
            gone.add(rel)
    return gone


def _carry(src: Path, dst: Path, rel: PurePosixPath, skip: set[str], written: set[str]) -> None:
    """Copy the old folder's entries that are the user's (not written now, not stale)
    into the new tree: hard links for files, links as links, folders recursively."""
    for entry in sorted(os.scandir(src / rel), key=lambda e: e.name):
        r = rel / entry.name
        key = r.as_posix()
        if key in written or key in skip or key == MANIFEST:
            continue
        target = dst / r
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            if os.path.ismount(entry.path):  # removing the old tree would empty the mount
                raise SpecccError(f"{key} is a mount point in the output folder: choose "
                                  "another -o", location=str(src))
            had_stale = any(s.startswith(key + "/") for s in skip)
            target.mkdir(exist_ok=True)
            shutil.copymode(entry.path, target)
            _carry(src, dst, r, skip, written)
            if had_stale and not any(target.iterdir()):
                target.rmdir()  # it only held stale files
        else:  # a file, or a FIFO/socket/device: link the same inode into the new tree
            try:
                os.link(entry.path, target, follow_symlinks=False)
            except OSError:
                if not entry.is_file():
                    raise
                shutil.copy2(entry.path, target)  # another file system under OUT


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def _clean_dead_temps(parent: Path, name: str) -> None:
    """Temp siblings left by a killed run (its pid is in the name and no longer alive)."""
    for p in parent.glob(f"{_TMP_PREFIX}{name}.*"):
        try:
            pid = int(p.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def write_tree(outdir, files: dict[str, str | bytes], *, prune: tuple[str, ...] = ()) -> None:
    """Publish a command's whole output folder: `files` maps paths relative to `outdir`
    to their contents. `prune` is accepted for compatibility and ignored: what is stale
    is what the previous run's manifest lists (never a file speccc did not write)."""
    del prune
    out = output_dir(outdir)
    rels = {rel: _check_rel(rel) for rel in files}
    blobs = {rel: d.encode() if isinstance(d, str) else bytes(d) for rel, d in files.items()}
    for rel, data in blobs.items():
        if rel.endswith(".json"):  # json.dumps writes Infinity/NaN unless told not to
            check_json_finite(data.decode(), str(Path(outdir) / rel))
    exists = out.is_dir()
    if exists:
        _check_old_paths(out, rels.values())
    old = _read_manifest(out) if exists else {}
    stale = _stale(out, old, set(files)) if exists else set()
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_dead_temps(out.parent, out.name)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f"{_TMP_PREFIX}{out.name}.{os.getpid()}."))
    try:
        os.chmod(tmp, os.stat(out).st_mode & 0o7777 if exists else 0o777 & ~_umask())
        mode = _file_mode()
        for rel in sorted(rels):
            path = tmp / rels[rel]
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new(path, blobs[rel], mode, sync=False)
        if exists:
            _carry(out, tmp, PurePosixPath(), stale, set(files))
        manifest = {"written_by": "speccc", "files": {r: _digest(blobs[r]) for r in sorted(rels)}}
        _write_new(tmp / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n")
                   .encode(), mode, sync=False)
        _sync_tree(tmp, [tmp / p for p in rels.values()] + [tmp / MANIFEST])
        _swap_in(tmp, out, exists)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(out.parent)


def _swap_in(tmp: Path, out: Path, exists: bool) -> None:
    """Make `tmp` be `out`. With RENAME_EXCHANGE there is no moment without `out`;
    without it, the old folder is renamed aside first (a kill in between leaves the old
    output complete under the temp name, and the new one complete: never a mix)."""
    if not exists:
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp)  # now the old folder
        return
    aside = tmp.with_name(tmp.name + ".old")
    os.rename(out, aside)
    os.rename(tmp, out)
    shutil.rmtree(aside)
