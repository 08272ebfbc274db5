"""Hardware presets: loading, derived figures against the anchors, validation messages."""
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from speccc.cli.main import main
from speccc.errors import SpecccError
from speccc.hw import load_hw, preset_names
from speccc.hw.schema import TIMING_KEYS

PRESET_DIR = Path(__file__).resolve().parents[2] / "speccc" / "hw" / "presets"


def test_presets_listed():
    assert preset_names() == ["aim-gddr6", "aim-gddr6-x4", "hbm-pim", "hbm3-pim", "hbm3-pim-spec",
                              "hbm3-pim-x8"]


@pytest.mark.parametrize("name", ["aim-gddr6", "hbm-pim", "hbm3-pim"])
def test_every_number_has_a_source_comment(name):
    for line in (PRESET_DIR / f"{name}.toml").read_text().splitlines():
        if re.match(r"^\s*[A-Za-z_]+\s*=\s*[-0-9.]+", line):
            assert "#" in line, f"{name}: no source for: {line}"


def test_hbm2_anchor_timings():
    t = load_hw("hbm-pim").pim.timing
    want = dict(tCK_ns=1.0, CL=20, tRCD=14, tRP=14, tRAS=33, tRC=47, tCCD_S=2, tCCD_L=4,
                tRRD_S=4, tRRD_L=6, tFAW=16, tWR=16, tRFC=350, tREFI=3900)
    assert {k: getattr(t, k) for k in want} == want


def test_aim_anchor_figures():
    hw = load_hw("aim-gddr6")
    d = hw.derived()
    assert hw.pim.channels == 32 and hw.pim.banks_per_channel == 16
    assert d["peak_internal_gbs_per_channel"] == pytest.approx(512.0)   # 16 x 32 B/ns
    assert d["peak_external_gbs_per_channel"] == pytest.approx(32.0)
    assert hw.pim.pu.gb_bytes == 2048 and hw.pim.row_bytes == 2048
    t = hw.pim.timing
    assert (t.tCK_ns, t.CL, t.tRCD, t.tRCD_MAC, t.tRP, t.tRAS, t.tRC, t.tFAW) == \
        (0.5, 50, 36, 56, 32, 54, 89, 42)


def test_hbm_pim_internal_is_4x_and_hbm3_energy():
    assert load_hw("hbm-pim").derived()["internal_over_external"] == pytest.approx(4.0)
    e = load_hw("hbm3-pim").energy
    assert e.external_pj_per_bit == pytest.approx(0.44 + 1.01 + 1.23 + 0.5 + 0.3)
    assert e.act_pj == pytest.approx(0.11 * 8192, rel=1e-3)
    hbm3 = load_hw("hbm3-pim").derived()
    assert hbm3["peak_external_gbs"] == pytest.approx(665.6, rel=1e-3)
    assert hbm3["capacity_bytes"] == 16 * 2**30


def _write(tmp_path, text, name="bad.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _variant(tmp_path, old, new):
    text = (PRESET_DIR / "hbm-pim.toml").read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new, 1), "hbm-pim.toml")


def test_bad_value_names_the_key(tmp_path):
    p = _variant(tmp_path, "tRCD = 14 ", "tRCD = -3 ")
    with pytest.raises(SpecccError, match=r"^hbm-pim.toml: \[pim.timing\] tRCD: expected a "
                                          r"positive integer, got -3$"):
        load_hw(p)


@pytest.mark.parametrize("old,new,msg", [
    ("tRP = 14 ", "", r"\[pim.timing\] tRP: missing"),
    ("tRP = 14 ", "tRP = 14\ntBOGUS = 3 ", r"\[pim.timing\] tBOGUS: unknown key"),
    ('kind = "hbm-pim"', 'kind = "ddr9"', r"\[pim\] kind: expected one of hbm-pim"),
    ("lanes = 16 ", "lanes = 8 ", r"\[pim.pu\] lanes: breaks `burst_bytes == 2 \* lanes` "
                                  r"\(burst_bytes=32, lanes=8\)"),
    ("tCK_ns = 1.0 ", 'tCK_ns = "fast" ', r"\[pim.timing\] tCK_ns: expected a positive number"),
    ("[energy]", "[energi]", r"energi: unknown key"),
])
def test_validation_errors(tmp_path, old, new, msg):
    with pytest.raises(SpecccError, match=msg):
        load_hw(_variant(tmp_path, old, new))


def test_malformed_toml_and_unknown_preset(tmp_path):
    with pytest.raises(SpecccError, match=r"bad.toml: invalid TOML: .*line 2"):
        load_hw(_write(tmp_path, 'name = "x"\nthis is not toml\n'))
    with pytest.raises(SpecccError, match="unknown hardware preset 'nope'"):
        load_hw("nope")


def test_cli_hw_list_and_show():
    r = CliRunner().invoke(main, ["hw", "list", "--json"])
    assert r.exit_code == 0, r.output
    assert [x["name"] for x in json.loads(r.output)] == preset_names()
    r = CliRunner().invoke(main, ["hw", "show", "aim-gddr6", "--json"])
    data = json.loads(r.output)
    assert data["pim"]["timing"]["tRCD_MAC"] == 56
    assert data["derived"]["peak_internal_gbs"] == pytest.approx(16384.0)
    r = CliRunner().invoke(main, ["hw", "show", "hbm3-pim"])
    assert r.exit_code == 0 and "tCCD_AB" in r.output


def test_cli_hw_show_bad_file(tmp_path):
    p = _variant(tmp_path, "tRCD = 14 ", "tRCD = 0 ")
    r = CliRunner().invoke(main, ["hw", "show", str(p)])
    assert r.exit_code == 2
    assert "hbm-pim.toml: [pim.timing] tRCD: expected a positive integer, got 0" in r.output


def test_all_timing_keys_documented():
    assert len({k for k, _, _ in TIMING_KEYS}) == len(TIMING_KEYS)


# Issue 17: physically impossible or absurd presets are refused, naming the key and rule.
@pytest.mark.parametrize("old,new,msg", [
    ("tRC = 47 ", "tRC = 40 ", r"\[pim.timing\] tRC: breaks `tRC >= tRAS \+ tRP - 1` "
                               r"\(tRC=40, tRAS=33, tRP=14\)"),
    ("tRAS = 33 ", "tRAS = 10 ", r"\[pim.timing\] tR(AS|C): breaks"),
    ("tFAW = 16 ", "tFAW = 1 ", r"\[pim.timing\] tFAW: breaks `tFAW > 3 \* tRRD_S`"),
    ("tREFI = 3900 ", "tREFI = 351 ", r"\[pim.timing\] tREFI: breaks `tREFI >= 4 \* tRFC`"),
    ("tCK_ns = 1.0 ", "tCK_ns = 1e-300 ", r"\[pim.timing\] tCK_ns: .*plausible range"),
    ("tCK_ns = 1.0 ", "tCK_ns = 1e300 ", r"\[pim.timing\] tCK_ns: .*plausible range"),
    ("CL = 20 ", "CL = 1000000000 ", r"\[pim.timing\] CL: .*plausible range"),
    ("tMACL = 24 ", "tMACL = 1000000000 ", r"\[pim.timing\] tMACL: .*plausible range"),
    ("columns = 32 ", "columns = 1000000000 ", r"\[pim\] columns: .*plausible range"),
    ("pseudo_channels = 2 ", "pseudo_channels = 1000000 ", r"pseudo_channels: .*plausible"),
    ("channels = 8 ", "channels = 100000000000000000000 ", r"\[pim\] channels: .*plausible"),
    ("act_pj = 901.1 ", "act_pj = 1e308 ", r"\[energy\] act_pj: .*plausible range"),
])
def test_implausible_presets_refused(tmp_path, old, new, msg):
    with pytest.raises(SpecccError, match=msg):
        load_hw(_variant(tmp_path, old, new))


def test_every_rule_holds_for_shipped_presets():
    from speccc.hw.schema import RULES
    for name in preset_names():
        p = load_hw(name).pim
        assert all(holds(p, p.pu, p.timing) for _, _, holds, _ in RULES), name
