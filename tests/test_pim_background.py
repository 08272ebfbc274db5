"""PIM DRAM background (standby) power ([energy] background_mw_per_channel): every channel
of every PIM device draws it over a run's wall time, idle or busy. The runtime's report
adds it to the run's energy (and shows it as `pim_background_mj`); the dse closed forms
add the same term, so the two still agree."""
from __future__ import annotations

import json
import re

import pytest

from cli_helpers import invoke
from speccc.costmodel import pim_background_pj
from speccc.dse.hwfile import hw_text
from speccc.errors import SpecccError
from speccc.hw import load_hw

PRESETS = {"hbm-pim": 66.0, "aim-gddr6": 68.75, "aim-gddr6-x4": 68.75, "hbm3-pim": 60.5,
           "hbm3-pim-x8": 60.5, "hbm3-pim-spec": 60.5}
KEY = re.compile(r"(?m)^background_mw_per_channel = [0-9.]+.*$")


def _with(name: str, path, value: str | None):
    """`name`'s TOML with the key set to `value` (None: the line removed), written to path."""
    text, n = KEY.subn("" if value is None else f"background_mw_per_channel = {value}",
                       hw_text(name))
    assert n == 1
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, mw", PRESETS.items())
def test_every_preset_sets_its_figure(name, mw):
    assert load_hw(name).energy.background_mw_per_channel == mw


def test_attacc_charges_its_five_stacks():
    """A system's PIM is N stacks of a device preset: its figure, on N x its channels."""
    hw = load_hw("attacc", system=True)
    assert hw.energy.background_mw_per_channel == 60.5
    assert hw.pim.channels == 5 * 16
    assert pim_background_pj(hw, 1e6) == pytest.approx(60.5 * 80 * 1e6)   # mW x ns = pJ
    assert pim_background_pj(load_hw("a100-80g", system=True), 1e6) == 0.0   # no PIM


def test_a_file_without_the_key_loads_with_zero_and_a_negative_one_is_refused(tmp_path):
    hw = load_hw(str(_with("hbm-pim", tmp_path / "old.toml", None)))
    assert hw.energy.background_mw_per_channel == 0.0
    assert pim_background_pj(hw, 1e9) == 0.0
    assert load_hw(str(_with("hbm-pim", tmp_path / "z.toml", "0"))).energy \
        .background_mw_per_channel == 0.0
    with pytest.raises(SpecccError, match="background_mw_per_channel: expected a "
                                          "non-negative number"):
        load_hw(str(_with("hbm-pim", tmp_path / "neg.toml", "-1.0")))


def _run(hw, tokens: int) -> dict:
    r = invoke("run", "--target", "llama-tiny", "--draft", "llama-tiny", "--hw", hw,
               "--acceptance", 0.8, "--max-new-tokens", tokens, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    zero = _with("hbm-pim", tmp_path_factory.mktemp("hw") / "hbm-pim-0.toml", "0.0")
    return {"bg8": _run("hbm-pim", 8), "bg16": _run("hbm-pim", 16), "zero8": _run(zero, 8)}


def test_run_energy_is_the_zero_background_run_plus_power_times_time(runs):
    bg, zero = runs["bg8"], runs["zero8"]
    assert bg["time_ms"] == zero["time_ms"] and bg["tokens"] == zero["tokens"]
    assert zero["pim_background_mj"] == 0.0
    assert bg["pim_background_mj"] > 0.0
    assert bg["energy_mj"] - bg["pim_background_mj"] == pytest.approx(zero["energy_mj"],
                                                                       rel=1e-12)
    # 66 mW on each of hbm-pim's 8 channels over the run (mW x ms = 1e-3 mJ)
    assert bg["pim_background_mj"] == pytest.approx(66.0 * 8 * bg["time_ms"] * 1e-3,
                                                    rel=1e-12)
    assert bg["energy_per_token_mj"] == pytest.approx(
        bg["energy_mj"] / bg["generated_tokens"], rel=1e-12)
    assert bg["energy_per_token_mj"] > zero["energy_per_token_mj"]


def test_background_grows_linearly_with_wall_time(runs):
    short, long = runs["bg8"], runs["bg16"]
    assert long["time_ms"] > 1.5 * short["time_ms"]
    assert long["pim_background_mj"] / short["pim_background_mj"] == pytest.approx(
        long["time_ms"] / short["time_ms"], rel=1e-12)


def test_closed_form_and_runtime_charge_the_same_background():
    """The dse evaluator's closed form and the discrete-event runtime, with and without the
    key: the difference (the background per token) agrees, and is mW x channels / tokens/s."""
    from speccc.dse.evaluate import Evaluator, Study
    from speccc.dse.space import Space
    text = hw_text("hbm-pim")
    zero = KEY.sub("background_mw_per_channel = 0.0", text)
    space = Space((("hw", ("bg", "zero")), ("batch", (1,)), ("mapping", ("all-pim",)),
                   ("draft_channels", (0,)), ("schedule", ("none",)), ("gamma", (4,))))
    study = Study("llama-68m", "llama-68m", space, (0.8,), max_new_tokens=24,
                  hw_texts=(("bg", text), ("zero", zero)))
    ev = Evaluator(study)
    ids = {hw: space.index({"hw": hw, "batch": 1, "mapping": "all-pim", "draft_channels": 0,
                            "schedule": "none", "gamma": 4}) for hw in ("bg", "zero")}
    closed = {hw: ev.evaluate(study, i) for hw, i in ids.items()}
    sim = {hw: ev.simulate(study, i) for hw, i in ids.items()}
    assert all(r["feasible"] for r in (*closed.values(), *sim.values()))
    assert closed["bg"]["itl_ms"] == closed["zero"]["itl_ms"]
    per_token = {k: r["bg"]["energy_per_token_mj"] - r["zero"]["energy_per_token_mj"]
                 for k, r in (("closed", closed), ("sim", sim))}
    # mW / (tokens/s) = mJ per token, on hbm-pim's 8 channels
    assert per_token["closed"] == pytest.approx(66.0 * 8 / closed["bg"]["tokens_per_s"],
                                                rel=1e-9)
    assert per_token["sim"] == pytest.approx(66.0 * 8 / sim["bg"]["tokens_per_s"], rel=1e-9)
    assert per_token["sim"] == pytest.approx(per_token["closed"], rel=1e-3)
