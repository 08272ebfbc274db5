"""DSE cost tables persisted across runs (speccc/dse/diskcache.py)."""
from __future__ import annotations

import dataclasses

import pytest

from speccc.dse import diskcache, evaluate
from speccc.dse.driver import prepare, run

SPACE = """
[space]
gamma = [2, 4]
schedule = ["none", "serial"]
mapping = ["auto", "specpim"]
batch = [1]
hw = ["hbm3-pim-x8"]
"""


def _study(tmp_path, cost_model="roofline"):
    (tmp_path / "s.toml").write_text(SPACE)
    return prepare("llama2-7b", "llama-68m", "aim-gddr6", str(tmp_path / "s.toml"), "0.8",
                   None, None, None, 16, 0, cost_model)


def _sweep(study, out):
    evaluate._EVALUATORS.clear()          # a new process, as far as the tables go
    run(study, out, "grid", "latency", "local", 1, None, 256, {}, 0, 0)
    return (out / "points.csv").read_text()


def test_second_run_reuses_the_tables_without_loading_models(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECCC_CACHE", str(tmp_path / "cache"))
    study = _study(tmp_path)
    cold = _sweep(study, tmp_path / "a")
    files = list((tmp_path / "cache" / "dse").glob("*.pkl"))
    assert len(files) == 1

    def no_models(*a, **k):
        raise AssertionError("models loaded although every price was cached")
    monkeypatch.setattr("speccc.runtime.runner.load_pair", no_models)
    assert _sweep(study, tmp_path / "b") == cold


def test_key_covers_what_the_prices_depend_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECCC_CACHE", str(tmp_path))
    study = _study(tmp_path)
    key = diskcache.study_key(study)
    assert diskcache.study_key(_study(tmp_path)) == key
    assert diskcache.study_key(_study(tmp_path, "targets")) != key
    assert diskcache.study_key(dataclasses.replace(study, draft="llama-160m")) != key
    assert diskcache.study_key(dataclasses.replace(study, max_new_tokens=64)) != key
    texts = tuple((k, t.replace("clock_mhz = 1050.0", "clock_mhz = 900.0"))
                  for k, t in study.hw_texts)
    assert texts != study.hw_texts
    assert diskcache.study_key(dataclasses.replace(study, hw_texts=texts)) != key
    f = tmp_path / "m.onnx"                  # a file model: by path, size and mtime
    f.write_bytes(open(evaluate.resolve_model("llama-68m"), "rb").read())
    k1 = diskcache.study_key(dataclasses.replace(study, draft=str(f)))
    f.write_bytes(f.read_bytes() + b"\0")
    assert diskcache.study_key(dataclasses.replace(study, draft=str(f))) != k1


def test_cache_location_and_switch(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECCC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    study = _study(tmp_path)
    assert diskcache.path_for(study).parent == tmp_path / "xdg" / "speccc" / "dse"
    monkeypatch.setenv("SPECCC_DSE_CACHE", "0")
    assert diskcache.path_for(study) is None


def test_cache_root_and_off_switch_shared_with_cachedir(tmp_path, monkeypatch):
    """One root for every kind: a relative XDG_CACHE_HOME is ignored (XDG spec) as the
    calibration cache ignores it, and SPECCC_NO_CACHE turns the dse tables off too."""
    from speccc import cachedir
    monkeypatch.delenv("SPECCC_CACHE", raising=False)
    monkeypatch.delenv("SPECCC_DSE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")
    study = _study(tmp_path)
    assert diskcache.path_for(study).parent == cachedir.cache_dir("dse")
    assert diskcache.path_for(study).is_absolute()
    monkeypatch.setenv("SPECCC_NO_CACHE", "1")
    assert diskcache.path_for(study) is None


@pytest.mark.parametrize("junk", [b"", b"not a pickle", b"\x80\x04K\x01."])
def test_damaged_cache_is_a_cold_start(tmp_path, junk):
    p = tmp_path / "x.pkl"
    p.write_bytes(junk)
    assert diskcache.load(p) == {}
