"""Atomic file output (temp file + rename): a failed write never leaves a partial file
and never clobbers what the user had."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_tree(outdir, files: dict[str, str | bytes], *, prune: tuple[str, ...] = ()) -> None:
    """Write a command's whole output folder: `files` maps paths relative to `outdir`
    to their contents. Every file a command writes into a folder goes through here, so
    how a folder is published (atomically, with a manifest of what speccc wrote) is one
    decision. `prune` names glob patterns of files from an earlier run to remove when
    this run did not write them."""
    out = Path(outdir)
    for rel, data in files.items():
        write_bytes_atomic(out / rel, data.encode() if isinstance(data, str) else data)
    written = {(out / rel).resolve() for rel in files}
    for pattern in prune:
        for old in sorted(out.glob(pattern)):
            if old.is_file() and old.resolve() not in written:
                old.unlink()
