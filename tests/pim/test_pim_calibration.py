"""The PIM calibration cache (targets/pim/cost.py): keyed on what decides a GEMV
program's timing, kept on disk under the cache folder (speccc/cachedir.py)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from speccc.cachedir import cache_dir, cache_root
from speccc.hw import load_hw
from speccc.targets.pim import cost
from speccc.targets.pim.phase import time_phase


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty cache folder and an empty in-process memo."""
    monkeypatch.setenv("SPECCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECCC_NO_CACHE", raising=False)
    monkeypatch.setattr(cost, "_MEMO", {})
    return tmp_path / "cache" / "calibration"


def _no_emulation(monkeypatch):
    def boom(*a):
        raise AssertionError("emulated although the run was cached")
    monkeypatch.setattr(cost, "_emulate", boom)


def _direct(hw, M, K, count, reps):
    return time_phase(cost.gemv_program(hw, M, K, count, reps), hw).ns


def test_cache_root_honours_speccc_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("SPECCC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("calibration") == tmp_path / "xdg" / "speccc" / "calibration"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")      # ignored, as the spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "speccc"
    monkeypatch.setenv("SPECCC_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"


def test_key_ignores_name_and_unused_channels_and_the_runs_agree():
    hw = load_hw("hbm-pim")
    wide = dataclasses.replace(hw, name="renamed",
                               pim=dataclasses.replace(hw.pim, channels=hw.pim.channels * 2))
    # a 512 x 512 GEMV spans fewer channels than either preset has
    assert cost.program_key(hw, 512, 512, 1, 2, 1) == cost.program_key(wide, 512, 512, 1, 2, 1)
    assert _direct(hw, 512, 512, 1, 2) == _direct(wide, 512, 512, 1, 2)
    # a GEMV wide enough to use every channel is another program on the wider device
    big = 64 * 1024
    assert cost.program_key(hw, big, 512, 1, 1, 1) != cost.program_key(wide, big, 512, 1, 1, 1)


def test_key_changes_with_timing_pu_energy_and_shape():
    hw = load_hw("hbm-pim")
    base = cost.program_key(hw, 4096, 4096, 1, 1, 1)
    p = hw.pim
    variants = [
        dataclasses.replace(hw, pim=dataclasses.replace(p, timing=dataclasses.replace(
            p.timing, tRCD=p.timing.tRCD + 1))),
        dataclasses.replace(hw, pim=dataclasses.replace(p, pu=dataclasses.replace(
            p.pu, clock_mhz=p.pu.clock_mhz * 2))),
        dataclasses.replace(hw, energy=dataclasses.replace(hw.energy, mac_pj=hw.energy.mac_pj * 2)),
    ]
    for v in variants:
        assert cost.program_key(v, 4096, 4096, 1, 1, 1) != base
    assert cost.program_key(hw, 4096, 4096, 1, 2, 1) != base
    # the NPU does not time PIM programs
    npu = dataclasses.replace(hw, npu=dataclasses.replace(hw.npu, pes=hw.npu.pes + 1))
    assert cost.program_key(npu, 4096, 4096, 1, 1, 1) == base


def test_runs_persist_on_disk_and_are_reused(fresh, monkeypatch):
    hw = load_hw("hbm-pim")
    first = cost.gemv_run(hw, 1024, 512, 1, 3)
    assert first.ns == _direct(hw, 1024, 512, 1, 3)
    files = list(fresh.glob("*.json"))
    assert len(files) == 1
    monkeypatch.setattr(cost, "_MEMO", {})          # a new process
    _no_emulation(monkeypatch)
    again = cost.gemv_run(hw, 1024, 512, 1, 3)
    assert again == first
    # another name and more channels: the same program, so the same entry
    other = dataclasses.replace(hw, name="mine", pim=dataclasses.replace(hw.pim, channels=32))
    assert cost.gemv_run(other, 1024, 512, 1, 3) == first


def test_a_torn_or_foreign_entry_is_a_miss(fresh, monkeypatch):
    hw = load_hw("hbm-pim")
    good = cost.gemv_run(hw, 1024, 512, 1, 1)
    (entry,) = fresh.glob("*.json")
    for junk in (b"", b"{not json", json.dumps({"key": "other", "run": [1, 2, 3, 4, 5]}).encode()):
        entry.write_bytes(junk)
        monkeypatch.setattr(cost, "_MEMO", {})
        assert cost.gemv_run(hw, 1024, 512, 1, 1) == good


def test_a_source_change_invalidates(fresh, monkeypatch):
    hw = load_hw("hbm-pim")
    cost.gemv_run(hw, 1024, 512, 1, 1)
    monkeypatch.setattr(cost, "_MEMO", {})
    monkeypatch.setattr(cost, "_SOURCES", ["edited"])
    cost.gemv_run(hw, 1024, 512, 1, 1)
    assert len(list(fresh.glob("*.json"))) == 2


def test_no_cache_env_writes_nothing(fresh, monkeypatch):
    monkeypatch.setenv("SPECCC_NO_CACHE", "1")
    cost.gemv_run(load_hw("hbm-pim"), 1024, 512, 1, 1)
    assert not fresh.exists()


def test_an_unwritable_cache_folder_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPECCC_CACHE", str(blocker))
    monkeypatch.setattr(cost, "_MEMO", {})
    hw = load_hw("hbm-pim")
    assert cost.gemv_run(hw, 1024, 512, 1, 1).ns == _direct(hw, 1024, 512, 1, 1)


def test_a_cached_run_keeps_each_field_type(fresh, monkeypatch):
    """Reports print what the run holds: an int read back as 12.0 would change their bytes."""
    hw = load_hw("hbm-pim")
    cold = cost.gemv_run(hw, 1024, 512, 1, 2)
    monkeypatch.setattr(cost, "_MEMO", {})
    warm = cost.gemv_run(hw, 1024, 512, 1, 2)
    assert [type(x) for x in cost._fields(warm)] == [type(x) for x in cost._fields(cold)]
    assert repr(cost._fields(warm)) == repr(cost._fields(cold))


# Sources a calibration runs that cannot change its numbers (checked below): where
# entries are stored, text-file limits checked while parsing, and a list of activation
# op names cost.py imports for uncached host-side ops.
NOT_DECIDING = {"speccc/cachedir.py", "speccc/textio.py", "npu/kernels.py"}


def test_every_source_a_calibration_runs_is_in_the_digest(monkeypatch):
    """Trace a hardware load plus an emulated run on every PIM preset: each speccc source
    file executed must be hashed by source_digest (or be named in NOT_DECIDING)."""
    import sys
    from pathlib import Path

    import speccc
    import speccc.targets
    roots = tuple(str(Path(m.__file__).resolve().parent) for m in (speccc, speccc.targets))
    ran: set[str] = set()

    def note(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(roots):
            ran.add(frame.f_code.co_filename)

    monkeypatch.setenv("SPECCC_NO_CACHE", "1")
    monkeypatch.setattr(cost, "_MEMO", {})
    from speccc.hw.config import load_hw as load_fresh
    sys.setprofile(note)
    try:
        for preset in ("hbm-pim", "aim-gddr6", "hbm3-pim", "hbm3-pim-spec"):
            cost.gemv_run(load_fresh(preset), 1024, 512, 2, 8)
    finally:
        sys.setprofile(None)
    hashed = {str(f) for f in cost.digest_files()}
    missing = {f for f in ran - hashed
               if "/".join(Path(f).parts[-2:]) not in NOT_DECIDING}
    assert not missing, f"calibration runs sources the digest does not hash: {missing}"
    assert any(f.endswith("hw/schema.py") for f in ran & hashed)


@pytest.mark.parametrize("name", ["hw/schema.py", "hw/config.py", "pim/timing.py",
                                  "standards/hbm2_pim.py", "pim/cost.py"])
def test_editing_a_digested_source_changes_the_key(name, tmp_path, monkeypatch):
    """A copy of the digest's files with one edited byte gives another digest, so the
    calibration entry's name (and its stored key) changes."""
    from pathlib import Path
    files = cost.digest_files()
    (src,) = [f for f in files if "/".join(f.parts[-2:]) == name]
    copies = []
    for f in files:
        c = tmp_path / f.parts[-2] / f.name
        c.parent.mkdir(exist_ok=True)
        c.write_bytes(f.read_bytes())
        copies.append(c)
    before = cost.digest_of(copies)
    assert before == cost.digest_of(files)
    edited = tmp_path / src.parts[-2] / src.name
    edited.write_bytes(edited.read_bytes() + b"\n# edited\n")
    after = cost.digest_of(copies)
    assert after != before

    hw = load_hw("hbm-pim")
    key = cost.program_key(hw, 1024, 512, 1, 1, 1)
    monkeypatch.setattr(cost, "_SOURCES", [before])
    entry_before, _ = cost._entry(key)
    monkeypatch.setattr(cost, "_SOURCES", [after])
    assert cost._entry(key)[0] != entry_before
    assert Path(entry_before).parent == Path(cost._entry(key)[0]).parent
