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


X8 = {"pim.pu.mac_lanes": 8, "pim.pu.vector_slots": 8, "pim.pu.acc_sets": 8}


def test_pu_knobs_apply_to_a_systems_pim_stacks():
    """[system.knobs] (as `speccc dse --hw attacc` writes the space's PU knobs) edit the
    device preset of the system's PIM stacks: attacc with hbm3-pim-x8's PU figures has
    hbm3-pim-x8's PU, on 5 stacks' channels, and its attention on PIM gets cheaper."""
    from speccc.dse.hwfile import load_text, variant_text
    from speccc.hw import load_hw
    plain = load_hw("attacc", system=True)
    text = variant_text("attacc", X8)
    knobbed = load_text(text)
    x8 = load_hw("hbm3-pim-x8")
    assert knobbed.pim.pu == x8.pim.pu != plain.pim.pu
    assert knobbed.pim.channels == plain.pim.channels == 5 * x8.pim.channels
    assert knobbed.gpu == plain.gpu and knobbed.system.pim_link == plain.system.pim_link
    assert knobbed.name.startswith("attacc+pim.pu.mac_lanes=8")
    assert '[system.knobs]' in text and '"pim.pu.mac_lanes" = 8' in text


def test_system_knob_sweep_prices_each_variant(swept, tmp_path):
    """A space with a PU knob over attacc: one variant per value, each priced on its own
    stacks (more MAC lanes and buffered vectors: a γ = 2 verify on PIM is cheaper)."""
    (tmp_path / "s.toml").write_text(
        '[space]\nhw = ["attacc"]\nmapping = ["attacc"]\nschedule = ["serial"]\n'
        'gamma = [2]\n[space.knobs]\n"pim.pu.mac_lanes" = [1, 8]\n'
        '"pim.pu.vector_slots" = [8]\n"pim.pu.acc_sets" = [8]\n')
    r = invoke("dse", "--target", swept / "target.onnx", "--draft", swept / "draft.onnx",
               "--space", tmp_path / "s.toml", "--acceptance", "0.7", "--max-new-tokens",
               16, "--confirm", 0, "--confirm-random", 0, "-o", tmp_path / "o")
    assert r.exit_code == 0, (r.output, r.exception)
    rows = {r["pim.pu.mac_lanes"]: r for r in csv.DictReader(open(tmp_path / "o" /
                                                                  "points.csv"))}
    assert set(rows) == {"1", "8"} and all(r["feasible"] == "1" for r in rows.values())
    assert float(rows["8"]["itl_ms"]) < float(rows["1"]["itl_ms"])


@pytest.mark.parametrize("hw, knob, needles", [
    ("a100-80g", '"npu.pes" = [2]', ["a100-80g", "npu.pes", 'pim = "none"']),
    ("a100-80g", '"pim.pu.mac_lanes" = [8]', ["a100-80g", "pim.pu.mac_lanes",
                                              "no device preset"]),
    ("attacc", '"npu.pes" = [2]', ["attacc", "npu.pes", "has no NPU"]),
    ("attacc", '"link.latency_ns" = [5.0]', ["attacc", "link.latency_ns", "own [link]"]),
    ("attacc", '"pim.pu.mac_lanes" = [0]', ["attacc", "mac_lanes", "positive"]),
])
def test_knobs_that_do_not_apply_to_a_system_are_refused(swept, tmp_path, hw, knob,
                                                          needles):
    (tmp_path / "s.toml").write_text(f'[space]\nhw = ["{hw}"]\n[space.knobs]\n{knob}\n')
    r = invoke("dse", "--target", swept / "target.onnx", "--draft", swept / "draft.onnx",
               "--space", tmp_path / "s.toml", "--acceptance", "0.7", "-o", tmp_path / "o")
    assert_error(r, *needles)
    assert not (tmp_path / "o").exists()
