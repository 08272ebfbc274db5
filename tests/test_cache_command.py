"""`speccc cache info|clear|prune` and SPECCC_CACHE_MAX_MB (speccc/cachedir.py): only
speccc's own entries are ever removed, and a folder that is not speccc's is refused."""
from __future__ import annotations

import json
import os
import time

import pytest
from cli_helpers import assert_error, invoke

from speccc import cachedir
from speccc.hw import load_hw
from speccc.targets.pim import cost

CAL, DSE, ZOO = "0" * 31 + "a.json", "1" * 32 + ".pkl", "smollm2-int4-0123456789abcdef.onnx"
TOK = "3" * 32 + ".json"


@pytest.fixture
def root(tmp_path, monkeypatch):
    r = tmp_path / "cache"
    monkeypatch.setenv("SPECCC_CACHE", str(r))
    monkeypatch.delenv("SPECCC_NO_CACHE", raising=False)
    monkeypatch.delenv("SPECCC_CACHE_MAX_MB", raising=False)
    return r


def _put(path, nbytes, age_s=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * nbytes)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


@pytest.fixture
def filled(root):
    """Entries of every kind, a file speccc did not write, a fresh and a stale temp."""
    files = {"cal": _put(root / "calibration" / CAL, 100, age_s=30),
             "dse": _put(root / "dse" / DSE, 2000, age_s=20),
             "zoo": _put(root / "zoo" / ZOO, 5000, age_s=10),
             "tok": _put(root / "tokenizer" / TOK, 300, age_s=5),
             "notes": _put(root / "calibration" / "notes.txt", 7),
             "fresh_tmp": _put(root / "dse" / f".{DSE}.abc123.tmp", 3),
             "stale_tmp": _put(root / "dse" / f".{DSE}.old999.tmp", 11, age_s=7200)}
    return files


def test_info_counts_entries_and_bytes_per_kind(filled, root):
    r = invoke("cache", "info", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["path"] == str(root) and d["exists"] and d["max_bytes"] is None
    got = {k: (v["entries"], v["bytes"], v["other_files"]) for k, v in d["kinds"].items()}
    assert got == {"calibration": (1, 100, 1), "dse": (2, 2011, 1), "zoo": (1, 5000, 0),
                   "tokenizer": (1, 300, 0)}
    text = invoke("cache", "info")
    assert text.exit_code == 0 and str(root) in text.stdout and "calibration" in text.stdout


def test_clear_one_kind_removes_only_its_entries(filled, root):
    r = invoke("cache", "clear", "--kind", "dse")
    assert r.exit_code == 0, r.output
    assert "removed 2 file(s)" in r.stdout
    assert not filled["dse"].exists() and not filled["stale_tmp"].exists()
    assert filled["fresh_tmp"].exists()          # may be a write in progress
    assert all(filled[k].exists() for k in ("cal", "zoo", "notes", "tok"))


def test_clear_all_leaves_foreign_files_and_their_folder(filled, root):
    assert invoke("cache", "clear").exit_code == 0
    assert not any(filled[k].exists() for k in ("cal", "dse", "zoo", "tok", "stale_tmp"))
    assert filled["notes"].exists() and filled["fresh_tmp"].exists()
    assert not (root / "zoo").exists()           # emptied folders go too
    assert sorted(p.name for p in root.iterdir()) == ["calibration", "dse"]


def test_a_folder_that_is_not_speccc_cache_is_refused(filled, root):
    precious = _put(root / "thesis.tex", 5)
    for args in (("clear",), ("info",), ("prune", "--max-mb", "0")):
        assert_error(invoke("cache", *args), str(root), "thesis.tex", "not speccc's cache")
    assert precious.exists() and all(f.exists() for f in filled.values())


def test_a_plain_file_as_cache_root_is_refused(tmp_path, monkeypatch):
    f = _put(tmp_path / "somefile", 3)
    monkeypatch.setenv("SPECCC_CACHE", str(f))
    assert_error(invoke("cache", "clear"), "somefile", "not a folder")
    assert f.exists()


def test_symlinks_are_never_followed(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    target = _put(elsewhere / CAL, 10)
    (root / "calibration").mkdir(parents=True)
    (root / "calibration" / ("2" * 32 + ".json")).symlink_to(target)
    assert invoke("cache", "clear").exit_code == 0
    assert target.exists()                       # a link named like an entry is not one
    (root / "calibration" / ("2" * 32 + ".json")).unlink()
    (root / "calibration").rmdir()
    (root / "calibration").symlink_to(elsewhere, target_is_directory=True)
    assert_error(invoke("cache", "clear"), "calibration", "not speccc's cache")
    assert target.exists()


def test_no_cache_folder_yet(root):
    r = invoke("cache", "clear")
    assert r.exit_code == 0 and "removed 0 file(s)" in r.stdout
    r = invoke("cache", "info")
    assert r.exit_code == 0 and "not created yet" in r.stdout
    assert not root.exists()


def test_prune_evicts_oldest_first(filled, root):
    r = invoke("cache", "prune", "--max-mb", "0.0073")  # 7300 bytes of 7411 (own files)
    assert r.exit_code == 0, r.output
    assert not filled["stale_tmp"].exists() and not filled["cal"].exists()  # the 2 oldest
    assert filled["dse"].exists() and filled["zoo"].exists() and filled["tok"].exists()
    assert_error(invoke("cache", "prune"), "--max-mb", "SPECCC_CACHE_MAX_MB")
    assert_error(invoke("cache", "prune", "--max-mb", "-1"), "--max-mb")


def test_cap_env_evicts_on_calibration_write(root, monkeypatch):
    old_dse = _put(root / "dse" / DSE, 2000, age_s=100)
    monkeypatch.setattr(cost, "_MEMO", {})
    hw = load_hw("hbm-pim")
    cost.gemv_run(hw, 1024, 512, 1, 1)
    (first,) = (root / "calibration").glob("*.json")
    os.utime(first, (time.time() - 50, time.time() - 50))
    entry = first.stat().st_size
    monkeypatch.setenv("SPECCC_CACHE_MAX_MB", str(1.5 * entry / 1e6))   # room for one
    cost.gemv_run(hw, 2048, 512, 1, 1)
    left = list((root / "calibration").glob("*.json"))
    assert len(left) == 1 and left[0] != first   # the new entry stays, the old ones go
    assert not old_dse.exists()


def test_a_bad_cap_is_a_one_line_error(root, monkeypatch):
    monkeypatch.setenv("SPECCC_CACHE_MAX_MB", "lots")
    assert_error(invoke("cache", "info"), "SPECCC_CACHE_MAX_MB", "lots")
    with pytest.raises(cachedir.SpecccError, match="SPECCC_CACHE_MAX_MB"):
        cachedir.write_entry(root / "calibration" / CAL, b"{}")


def test_the_readme_tour_never_clears_the_real_cache():
    """test_readme_tour runs the tour with the user's own cache folder: a clear or prune
    there would delete every cached build on the machine (it once did: zoo/, 11 GB)."""
    from test_readme_tour import tour
    assert "speccc cache info" in tour()
    assert not [c for c in tour() if "cache clear" in c or "cache prune" in c]
