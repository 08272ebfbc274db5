"""Runs the RUN lines of every tests/filecheck/**/*.ir file, lit-style.

A file says `// RUN: speccc opt %s -p 'fold' | filecheck %s` and CHECK lines after it;
`%s` is the file itself. Every RUN line must exit 0. Pass tests read like MLIR's.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent / "filecheck"
FILES = sorted(ROOT.rglob("*.ir"))


def run_lines(path: Path) -> list[str]:
    return [line.split("RUN:", 1)[1].strip() for line in path.read_text().splitlines()
            if line.lstrip().startswith("// RUN:")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_filecheck(path):
    lines = run_lines(path)
    assert lines, f"{path} has no RUN line"
    # The interpreter's own bin/ first, so `speccc` and `filecheck` are this install's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    for line in lines:
        cmd = line.replace("%s", shlex.quote(str(path)))
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                              text=True, env=env)
        assert proc.returncode == 0, f"RUN: {cmd}\n{proc.stdout}\n{proc.stderr}"


def test_every_pass_has_a_filecheck_test():
    from speccc.passmanager import all_passes
    text = "\n".join(p.read_text() for p in FILES)
    missing = [name for name in all_passes() if f"-p '{name}" not in text
               and f"-p {name}" not in text and f",{name}" not in text]
    assert not missing, f"passes without a filecheck test: {missing}"
