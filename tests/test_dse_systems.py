"""`speccc dse --hw` over system files (speccc.hw.system: GPUs, AttAcc): the mappings a
system's devices fit are evaluated, the others kept as infeasible points with the reason,
and the closed form is confirmed against the runtime there too. (docs/dse.md)"""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from cli_helpers import assert_error, invoke

SPACE = """
[space]
hw = ["attacc", "a100-80g"]
mapping = ["auto", "attacc", "specpim", "all-gpu"]
schedule = ["none", "serial"]
gamma = [2]
"""


@pytest.fixture(scope="module")
def swept(decode_pair, tmp_path_factory):
    d = tmp_path_factory.mktemp("sys")     # conftest's pair, copied: its folder stays clean
    for name in ("draft.onnx", "target.onnx"):
        shutil.copy(decode_pair / name, d / name)
    (d / "space.toml").write_text(SPACE)
    r = invoke("dse", "--target", d / "target.onnx", "--draft", d / "draft.onnx",
               "--space", d / "space.toml", "--acceptance", "0.7", "--max-new-tokens", 40,
               "--confirm", 4, "--confirm-random", 4, "-o", d / "out")
    assert r.exit_code == 0, (r.output, r.exception)
    return d


def test_systems_run_the_mappings_their_devices_fit(swept):
    rows = list(csv.DictReader(open(swept / "out" / "points.csv")))
    assert len(rows) == 2 * 4 * 2
    verdict = {(r["hw"], r["mapping"]): (r["feasible"], r["note"]) for r in rows}
    # a100-80g: GPUs only; attacc: GPUs + PIM stacks, no NPU
    assert verdict[("a100-80g", "all-gpu")][0] == "1"
    for m in ("auto", "attacc", "specpim"):
        ok, note = verdict[("a100-80g", m)]
        assert ok == "0" and "has no PIM" in note
    for m in ("attacc", "specpim", "all-gpu"):
        assert verdict[("attacc", m)][0] == "1", m
    ok, note = verdict[("attacc", "auto")]
    assert ok == "0" and "has no NPU" in note
    # a feasible point is priced: attention on the stacks is not the GPU-only number
    itl = {(r["hw"], r["mapping"], r["schedule"]): r["itl_ms"] for r in rows}
    assert float(itl[("attacc", "attacc", "none")]) > 0
    assert itl[("attacc", "attacc", "none")] != itl[("attacc", "all-gpu", "none")]


def test_confirmed_on_the_runtime_within_the_dse_bounds(swept):
    pj = json.loads((swept / "out" / "pareto.json").read_text())
    confirmed = [c for c in pj["confirmed"] if c["rel_error"]]
    assert len(confirmed) >= 4
    bounds = {"none": (0.05, 0.25), "serial": (0.05, 0.25)}
    for c in confirmed:
        cond, raw = bounds[c["schedule"]]
        assert max(c["rel_error_at_realized_acceptance"].values()) <= cond, c
        assert max(c["rel_error"].values()) <= raw, c


def test_best_toml_of_a_system_is_the_system_file(swept):
    from speccc.hw import load_hw
    text = (swept / "out" / "best.toml").read_text()
    hw = load_hw(swept / "out" / "best.toml", system=True)
    assert hw.system is not None and "[dse]" not in text
    assert "speccc run" in text and "device presets" in text


def test_knobs_on_a_system_are_refused(swept, tmp_path):
    (tmp_path / "s.toml").write_text('[space]\nhw = ["a100-80g"]\n'
                                     '[space.knobs]\n"npu.pes" = [2]\n')
    r = invoke("dse", "--target", swept / "target.onnx", "--draft", swept / "draft.onnx",
               "--space", tmp_path / "s.toml", "--acceptance", "0.7", "-o", tmp_path / "o")
    assert_error(r, "a100-80g", "knobs", "system description")
    assert not (tmp_path / "o").exists()
