"""Where benchmark scripts put their figures: benchmarks/results/NAME.json, written whole
(a temporary file renamed over the old one, so an interrupted run never leaves half a
file). Scripts run as `python benchmarks/X.py`, so this folder is on sys.path."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
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


def child_cost(argv: list[str], cwd: str, env: dict | None = None,
               check: bool = True) -> tuple[float, float]:
    """(user+sys CPU s, wall s) of one child process; CPU from wait4's rusage, so a busy
    machine inflates only the wall figure. `check`: a non-zero exit stops the benchmark
    with the tail of its stderr (off for commands meant to fail, e.g. on a missing file)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if check else subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if check and status:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-2000:]}")
    return ru.ru_utime + ru.ru_stime, wall
