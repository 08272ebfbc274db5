"""Per-model PIM channel groups (SpecPIM's architecture space): a preset's
[[pim.groups]] with their own PU configuration, used by place, cost, compile, hw show."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from speccc.cli import main
from speccc.errors import SpecccError
from speccc.hw import load_hw
from speccc.targets.pim.placement import channel_ranges


def test_groups_load_and_select_pus():
    hw = load_hw("hbm3-pim-spec")
    assert [(g.name, g.lo, g.hi) for g in hw.pim.groups] == [("draft", 0, 2), ("target", 2, 16)]
    assert hw.for_channels([5, 6]).pim.token_slots == 8
    assert hw.for_channels([0, 1]).pim.token_slots == 1
    assert hw.for_channels(range(16)) is hw          # spanning: the preset's [pim.pu]
    assert load_hw("hbm3-pim").for_channels([3]) == load_hw("hbm3-pim")


def test_group_errors(tmp_path):
    text = (Path(__file__).parents[2] / "speccc/hw/presets/hbm3-pim-spec.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("channels = 14 ", "channels = 13 "))
    with pytest.raises(SpecccError, match="cover 15 channels, the preset has 16"):
        load_hw(bad)
    bad.write_text(text.replace("mac_lanes = 8 ", "lanes = 8\nmac_lanes = 8 "))
    with pytest.raises(SpecccError, match="a group keeps them"):
        load_hw(bad)
    bad.write_text(text.replace("acc_sets = 8 ", "colour = 3\nacc_sets = 8 "))
    with pytest.raises(SpecccError, match="colour: unknown key"):
        load_hw(bad)


def test_split_by_group_name():
    hw = load_hw("hbm3-pim-spec")
    r = channel_ranges("draft:draft", ["draft", "target"], 16, hw)
    assert r == {"draft": (0, 2), "target": (2, 16)}
    with pytest.raises(SpecccError, match="GRAPH:GROUP"):
        channel_ranges("draft:small", ["draft", "target"], 16, hw)


def test_hw_show_lists_groups():
    out = CliRunner().invoke(main, ["hw", "show", "hbm3-pim-spec"]).output
    assert "[[pim.groups]] draft" in out and "[[pim.groups]] target" in out
    assert "2..15 (14)" in out


def test_compile_honours_each_groups_pus(tmp_path):
    """Verify positions (T=5) of the target run 5 tokens per row visit on its 8-lane
    group; the draft's group keeps one token per visit."""
    r = CliRunner()
    pair = tmp_path / "pair"
    assert r.invoke(main, ["zoo", "llama-tiny", "--mode", "decode", "--pair", str(pair)]).exit_code == 0
    out = tmp_path / "out"
    res = r.invoke(main, ["compile", str(pair / "target.onnx"), "--draft", str(pair / "draft.onnx"),
                          "--draft-channels", "2", "--hw", "hbm3-pim-spec", "--bind", "T=5,P=16",
                          "-o", str(out)])
    assert res.exit_code == 0, res.output
    lin = lambda g: [p.read_text() for p in (out / "pim").glob(f"{g}.*.linear.gemv.pim")]  # noqa: E731
    assert lin("target") and all("MACN.ab" in t and "n=5" in t for t in lin("target"))
    assert lin("draft") and not any("MACN.ab" in t for t in lin("draft"))
