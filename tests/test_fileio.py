"""speccc.fileio: atomic single files, refused special targets, symlink policy, output
folders swapped in whole with a manifest (issue 17, item 1). Never touches /dev: FIFOs
and sockets are made in tmp_path."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from speccc.errors import SpecccError
from speccc.fileio import MANIFEST, write_bytes_atomic, write_tree


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_file_mode_follows_umask(tmp_path, umask022):
    write_bytes_atomic(tmp_path / "a.bin", b"x")
    assert _mode(tmp_path / "a.bin") == 0o644
    os.umask(0o077)
    write_bytes_atomic(tmp_path / "b.bin", b"x")
    assert _mode(tmp_path / "b.bin") == 0o600


def test_replaces_regular_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    write_bytes_atomic(p, b"new")
    assert p.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_refuses_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(SpecccError, match="FIFO"):
        write_bytes_atomic(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


def test_refuses_socket_and_directory(tmp_path):
    sock_path = tmp_path / "s"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    try:
        with pytest.raises(SpecccError, match="socket"):
            write_bytes_atomic(sock_path, b"x")
    finally:
        s.close()
    with pytest.raises(SpecccError, match="directory"):
        write_bytes_atomic(tmp_path, b"x")


def test_symlink_is_followed_link_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_bytes_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_symlink_to_fifo_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link").symlink_to(fifo)
    with pytest.raises(SpecccError, match="FIFO"):
        write_bytes_atomic(tmp_path / "link", b"x")
    assert stat.S_ISFIFO(os.stat(tmp_path / "link").st_mode)


def test_empty_path_refused():
    with pytest.raises(SpecccError, match="empty"):
        write_bytes_atomic("", b"x")


# ------------------------------------------------------------------ folders --------
def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink()}


def test_tree_manifest_and_user_files_kept(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"pim/a.pim": "A", "pim/b.pim": "B", "report.json": "{}"})
    man = json.loads((out / MANIFEST).read_text())
    assert sorted(man["files"]) == ["pim/a.pim", "pim/b.pim", "report.json"]
    (out / "pim" / "mine.pim").write_text("hand-written")
    (out / "notes.txt").write_text("user")
    write_tree(out, {"pim/a.pim": "A2", "report.json": '{"n": 1}'}, prune=("pim/*.pim",))
    files = _tree(out)
    assert files["pim/mine.pim"] == b"hand-written" and files["notes.txt"] == b"user"
    assert "pim/b.pim" not in files  # stale, listed by the previous manifest
    assert files["pim/a.pim"] == b"A2"


def test_changed_stale_file_is_kept(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"npu/x.npu": "X", "report.json": "{}"})
    (out / "npu" / "x.npu").write_text("edited by the user")
    write_tree(out, {"report.json": "{}"})
    assert (out / "npu" / "x.npu").read_text() == "edited by the user"


def test_stale_only_folder_removed(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"draft/a": "1", "report.json": "{}"})
    write_tree(out, {"report.json": "{}"})
    assert not (out / "draft").exists()


def test_symlinked_subfolder_refused_and_untouched(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.pim").write_text("theirs")
    out = tmp_path / "out"
    write_tree(out, {"report.json": "{}"})
    (out / "pim").symlink_to(other)
    with pytest.raises(SpecccError, match="symlink"):
        write_tree(out, {"pim/a.pim": "A", "report.json": "{}"})
    assert (other / "keep.pim").read_text() == "theirs" and len(os.listdir(other)) == 1


def test_forged_manifest_cannot_delete_outside(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("v")
    out = tmp_path / "out"
    write_tree(out, {"report.json": "{}"})
    import hashlib
    digest = hashlib.sha256(b"v").hexdigest()
    (out / MANIFEST).write_text(json.dumps({"files": {"../victim.txt": digest,
                                                      "/etc/passwd": digest}}))
    write_tree(out, {"report.json": "{}"})
    assert victim.read_text() == "v"


def test_symlinked_outdir_followed(tmp_path):
    real = tmp_path / "real"
    write_tree(real, {"a": "1"})
    (tmp_path / "link").symlink_to(real)
    write_tree(tmp_path / "link", {"a": "2"})
    assert (tmp_path / "link").is_symlink() and (real / "a").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_outdir_is_a_file_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("mine")
    with pytest.raises(SpecccError, match="not a directory"):
        write_tree(f, {"a": "1"})
    assert f.read_text() == "mine"


def test_user_fifo_in_outdir_survives(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"a": "1"})
    os.mkfifo(out / "pipe")
    write_tree(out, {"a": "2"})
    assert stat.S_ISFIFO(os.lstat(out / "pipe").st_mode)


@pytest.mark.parametrize("make,rel", [
    (lambda p: (p / "report.json").mkdir(), "report.json"),          # a folder where a file goes
    (lambda p: os.mkfifo(p / "report.json"), "report.json"),         # a FIFO where a file goes
    (lambda p: (p / "pim").write_text("mine"), "pim"),               # a file where a folder goes
])
def test_user_entry_in_the_way_is_refused_not_lost(tmp_path, make, rel):
    out = tmp_path / "out"
    out.mkdir()
    make(out)
    before = os.lstat(out / rel).st_mode
    with pytest.raises(SpecccError, match=rel):
        write_tree(out, {"report.json": "{}", "pim/a.pim": "A"})
    assert os.lstat(out / rel).st_mode == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tree_modes_follow_umask(tmp_path, umask022):
    write_tree(tmp_path / "out", {"a/b.txt": "x", "c.txt": "y"})
    assert _mode(tmp_path / "out" / "a" / "b.txt") == 0o644
    assert _mode(tmp_path / "out" / "c.txt") == 0o644
    assert _mode(tmp_path / "out") == 0o755 and _mode(tmp_path / "out" / "a") == 0o755
