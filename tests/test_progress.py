"""Progress bars (speccc/cli/progress.py): on stderr only, only on a terminal or with
--progress, never mixed into --json stdout."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from speccc.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from speccc import zoo
    d = tmp_path_factory.mktemp("tiny")
    zoo.save(zoo.build("llama-tiny", mode="decode"), d / "tiny.onnx")
    return d


def test_run_progress_on_stderr_and_json_stdout_intact(decode_pair):
    args = ["run", "--target", decode_pair / "target.onnx", "--draft",
            decode_pair / "draft.onnx", "--prompt-ids", "1,2", "--max-new-tokens", "6",
            "--schedule", "none,serial", "--json"]
    plain = _invoke(*args)
    assert plain.exit_code == 0, plain.output
    assert plain.stderr == ""                       # not a terminal: no bars
    shown = _invoke(*args, "--progress")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(plain.stdout)
    assert "run: serial γ4, tokens" in shown.stderr and "6/6" in shown.stderr


def test_compile_progress_counts_passes(tiny, tmp_path):
    res = _invoke("compile", tiny / "tiny.onnx", "--bind", "T=1,P=16", "-o", tmp_path / "o",
                  "--json", "--progress")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    n = len(report["pipeline"]) + len(report["lowering"])
    assert "compile: lower-pim" in res.stderr and f"{n}/{n}" in res.stderr
    quiet = _invoke("compile", tiny / "tiny.onnx", "--bind", "T=1,P=16", "-o", tmp_path / "q",
                    "--json")
    assert quiet.stderr == ""


def test_exec_progress_counts_pim_ops(tiny, tmp_path):
    assert _invoke("inputs", tiny / "tiny.onnx", "--bind", "T=1,P=16", "-o",
                   tmp_path / "in.npz").exit_code == 0
    res = _invoke("exec", tiny / "tiny.onnx", "--inputs", tmp_path / "in.npz", "-o",
                  tmp_path / "out.npz", "--on", "emulator", "--progress")
    assert res.exit_code == 0, res.output
    assert "exec: PIM ops on the emulator" in res.stderr
    assert "Traceback" not in res.stderr


def test_no_progress_wins_and_help_stays_light():
    from speccc.cli.progress import wanted
    assert wanted(False) is False and wanted(True) is True
    for cmd in ("run", "compile", "exec", "dse"):
        assert "--progress / --no-progress" in _invoke(cmd, "--help").output
