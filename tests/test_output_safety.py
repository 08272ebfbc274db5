"""Issue 17 item 1 through the CLI: no writer replaces a FIFO/device, `-o ""` is an error,
compile never deletes a user's file or writes through a symlinked subfolder, a pair
compile followed by a single-model compile leaves no draft files, `asm -o` writes only
after --run/--check succeed, and a kill -9 leaves the old output folder or the new one.
FIFOs are made in tmp_path; nothing here touches /dev."""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from speccc import zoo
from speccc.fileio import MANIFEST
from cli_helpers import assert_error, invoke


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


@pytest.fixture(scope="module")
def pair(decode_pair):
    return decode_pair


LISTING = ".hw aim-gddr6\nACT ch=0 bg=0 ba=0 row=0\nPRE ch=0 bg=0 ba=0\n"

# every option that writes a file, as (args before the path, args after it)
WRITERS = {
    "zoo": (["zoo", "llama-tiny", "-o"], []),
    "opt": (["opt", "{ir}", "-o"], []),
    "exec": (["exec", "{model}", "--inputs", "{npz}", "-o"], []),
    "asm-o": (["asm", "{pim}", "-o"], []),
    "asm-trace": (["asm", "{pim}", "--trace"], []),
    "asm-perfetto": (["asm", "{pim}", "--perfetto"], []),
    "run-trace": (["run", "--target", "{model}", "--schedule", "none", "--trace"], []),
    "plot": (["plot", "{trace}", "-o"], []),
}


def _args(tmp_path, tiny, key, target):
    pim = tmp_path / "l.pim"
    pim.write_text(LISTING)
    fill = {"{ir}": str(tmp_path / "x.ir"), "{model}": str(tiny), "{npz}": str(tmp_path / "i.npz"),
            "{pim}": str(pim), "{trace}": str(tmp_path / "t.json")}
    before, after = WRITERS[key]
    return [fill.get(a, a) for a in before] + [target] + after


@pytest.mark.parametrize("key", sorted(WRITERS))
def test_writer_refuses_fifo(tmp_path, tiny, key):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_error(invoke(*_args(tmp_path, tiny, key, fifo)), "FIFO", "pipe")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("key", sorted(WRITERS))
def test_writer_refuses_empty_path(tmp_path, tiny, key):
    assert_error(invoke(*_args(tmp_path, tiny, key, "")), "empty")


def test_compile_empty_outdir(tmp_path, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_error(invoke("compile", tiny, "--bind", "T=1,P=4", "-o", ""), "empty")
    assert os.listdir(tmp_path) == []


def test_exec_symlink_followed_to_fifo_refused(tmp_path, tiny):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "o.npz").symlink_to(fifo)
    assert_error(invoke("exec", tiny, "--inputs", tmp_path / "i.npz", "-o", tmp_path / "o.npz"),
                 "FIFO")
    assert (tmp_path / "o.npz").is_symlink()


def test_zoo_output_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert invoke("zoo", "llama-tiny", "-o", tmp_path / "m.onnx").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.onnx").st_mode) == 0o644


def test_compile_keeps_user_listing_and_refuses_symlinked_pim(tmp_path, tiny):
    out = tmp_path / "o"
    assert invoke("compile", tiny, "--bind", "T=1,P=4", "-o", out).exit_code == 0
    mine = out / "pim" / "mine.pim"
    mine.write_text(LISTING)
    assert invoke("compile", tiny, "--bind", "T=1,P=4", "-o", out).exit_code == 0
    assert mine.read_text() == LISTING
    other = tmp_path / "other"
    other.mkdir()
    (other / "theirs.pim").write_text(LISTING)
    for p in (out / "pim").iterdir():
        p.unlink()
    (out / "pim").rmdir()
    (out / "pim").symlink_to(other)
    before = sorted(p.name for p in out.iterdir())
    assert_error(invoke("compile", tiny, "--bind", "T=1,P=4", "-o", out), "symlink", "pim")
    assert os.listdir(other) == ["theirs.pim"]
    assert sorted(p.name for p in out.iterdir()) == before


def test_pair_then_single_leaves_no_draft_files(tmp_path, pair):
    out = tmp_path / "o"
    r = invoke("compile", pair / "target.onnx", "--draft", pair / "draft.onnx",
               "--bind", "T=1,P=4", "-o", out)
    assert r.exit_code == 0, r.output
    assert list(out.rglob("draft*"))
    assert invoke("compile", pair / "target.onnx", "--bind", "T=1,P=4", "-o", out).exit_code == 0
    assert not list(out.rglob("draft*"))
    listed = json.loads((out / MANIFEST).read_text())["files"]
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {MANIFEST}


def test_asm_o_only_after_check_succeeds(tmp_path):
    bad = tmp_path / "bad.pim"  # ACT twice to one bank without PRE: the checker fails
    bad.write_text(".hw aim-gddr6\nACT ch=0 bg=0 ba=0 row=0\nACT ch=0 bg=0 ba=0 row=1\n")
    out = tmp_path / "canon.pim"
    r = invoke("asm", bad, "--check", "-o", out, "--trace", tmp_path / "t.pim")
    assert r.exit_code in (1, 2), r.output
    assert not out.exists() and not (tmp_path / "t.pim").exists()


# ------------------------------------------------------------------ kill -9 --------
KILLER = """
import os, signal, sys
from speccc import fileio
n = int(sys.argv[2]); calls = [0]
real = fileio._write_new
def write_new(*a, **k):
    calls[0] += 1
    if calls[0] > n:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
fileio._write_new = write_new
if n < 0:  # die between building the temp folder and swapping it in
    fileio._swap_in = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
    n = 10**9
files = {f"pim/{i:03d}.pim": f"new {i}" for i in range(40)}
files["report.json"] = '{"run": "new"}'
fileio.write_tree(sys.argv[1], files)
"""


def _consistent(out):
    """The folder is entirely one run's: every file agrees with report.json's run."""
    report = json.loads((out / "report.json").read_text())["run"]
    files = {p.relative_to(out).as_posix(): p.read_text() for p in (out / "pim").iterdir()}
    assert all(t.startswith(report) for t in files.values()), (report, files)
    return report


@pytest.mark.parametrize("kill_after", [-1, 0, 1, 20, 41])
def test_kill9_leaves_old_or_new(tmp_path, kill_after):
    from speccc.fileio import write_tree
    out = tmp_path / "out"
    old = {f"pim/{i:03d}.pim": f"old {i}" for i in range(30)}
    write_tree(out, {**old, "report.json": '{"run": "old"}'})
    (out / "user.txt").write_text("mine")
    p = subprocess.run([sys.executable, "-c", KILLER, str(out), str(kill_after)])
    assert p.returncode == -signal.SIGKILL
    assert _consistent(out) == "old" and (out / "user.txt").read_text() == "mine"
    # the next run cleans the dead run's temp folder and publishes whole
    write_tree(out, {"pim/000.pim": "new", "report.json": '{"run": "new"}'})
    assert _consistent(out) == "new" and (out / "user.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_kill9_real_compile(tmp_path, tiny):
    """A real `speccc compile` killed at increasing delays: old or new, never a mix."""
    out = tmp_path / "o"
    assert invoke("compile", tiny, "--bind", "T=1,P=4", "-o", out).exit_code == 0

    def snapshot():
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
                if p.is_file()}
    old = snapshot()
    cmd = [sys.executable, "-c", "from speccc.cli import main; main()", "compile", str(tiny),
           "--bind", "T=1,P=8", "-o", str(out)]
    t0 = time.perf_counter()
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True).returncode == 0
    full = time.perf_counter() - t0
    new = snapshot()
    assert new != old
    seen = set()
    for frac in (0.7, 0.9, 1.0):
        shutil.rmtree(out)
        for rel, data in old.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(full * frac)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = snapshot()
        assert now in (old, new), sorted(set(now) ^ set(old))
        seen.add("old" if now == old else "new")
    assert seen  # which of the two depends on the machine's load; both are fine


def test_asm_o_not_written_when_run_errors(tmp_path):
    """No `.hw` line and no --hw: --run is an error, and -o stays unwritten."""
    p = tmp_path / "nohw.pim"
    p.write_text("ACT ch=0 bank=0 row=0\nPRE ch=0 bank=0\n")
    out = tmp_path / "canon.pim"
    assert_error(invoke("asm", p, "--run", "-o", out), "--hw")
    assert not out.exists()


def test_partition_switch_leaves_no_stale_npu_listings(tmp_path, tiny):
    """all-npu then the default mapping: the NPU listings of the first run go."""
    out = tmp_path / "o"
    assert invoke("compile", tiny, "--bind", "T=1,P=4", "--partition", "all-npu",
                  "-o", out).exit_code == 0
    first = {p.relative_to(out).as_posix() for p in (out / "npu").rglob("*") if p.is_file()}
    assert invoke("compile", tiny, "--bind", "T=1,P=4", "-o", out).exit_code == 0
    listed = set(json.loads((out / MANIFEST).read_text())["files"])
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert first and on_disk == listed | {MANIFEST}
