"""DRAM standards as data: the registry, what a standard's table decides, and a fourth one.

A standard here is made the way a new standards/ module would make it (a `Standard` built
from the shared blocks plus its own rules) and registered with one entry in STANDARDS;
the preset is an existing one with its `kind` renamed, since the preset schema's kind
list (speccc/hw/config.py) is not the point of these tests.
"""
import dataclasses

import pytest

from speccc.errors import CheckFailed, SpecccError
from speccc.hw import load_hw, preset_names
from speccc.targets.pim import standards
from speccc.targets.pim.checker import Entry, check_trace
from speccc.targets.pim.emulator import time_program
from speccc.targets.pim.listing import parse
from speccc.targets.pim.standards import common, hbm2_pim
from speccc.targets.pim.standards.spec import KINDS, LEVELS, Rule, Standard

STREAM = "ACT.ab ch=0 row=0\nloop c 8 {\n  MAC.ab ch=0 row=0 col=c slot=0 acc=0\n}\n"


def test_every_preset_kind_has_a_standard():
    kinds = {load_hw(n).pim.kind for n in preset_names()}
    assert kinds <= set(standards.STANDARDS)
    assert {standards.standard_for(load_hw(n)).name for n in preset_names()} == \
        {"GDDR6-AiM", "HBM2-PIM", "HBM3-PIM"}


def test_every_rule_says_why():
    for std in standards.STANDARDS.values():
        assert set(std.scopes) == set(LEVELS)
        assert all(r.why for r in std.rules), std.name


def test_unknown_kind_is_a_located_error():
    hw = load_hw("hbm-pim")
    odd = dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, kind="lpddr5-pim"))
    with pytest.raises(SpecccError, match="no DRAM standard registered for .* 'lpddr5-pim'"):
        time_program(parse(STREAM), odd)


def _fourth(monkeypatch, std):
    """Register `std` for a renamed hbm-pim preset, as one line in STANDARDS would."""
    monkeypatch.setitem(standards.STANDARDS, "test-dram", std)
    hw = load_hw("hbm-pim")
    return dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, kind="test-dram"))


def _macs(res):
    return [e.cycle for e in res.trace if e.op == "MAC.ab"]


def test_a_fourth_standard_is_its_table(monkeypatch):
    """The engine walks whichever table the preset's standard gives it: the same
    table times a stream exactly as hbm-pim does; doubling one rule doubles the spacing."""
    base = hbm2_pim.STANDARD
    same = _fourth(monkeypatch, dataclasses.replace(base, name="TEST-DRAM"))
    ref = _macs(time_program(parse(STREAM), load_hw("hbm-pim"), record=True))
    assert _macs(time_program(parse(STREAM), same, record=True)) == ref

    slow = tuple(dataclasses.replace(r, latency="tCCD_AB+tCCD_AB") if r.name == "tCCD_AB" else r
                 for r in base.rules)
    hw = _fourth(monkeypatch, dataclasses.replace(base, name="TEST-DRAM", rules=slow))
    res = time_program(parse(STREAM), hw, record=True)
    gaps = {b - a for a, b in zip(_macs(res), _macs(res)[1:])}
    assert gaps == {2 * hw.pim.timing.tCCD_AB}
    check_trace(res.trace, hw, "stream.pim")
    # the checker reads the same table: the hbm-pim spacing violates the doubled rule
    tight = [Entry(e.cycle, e.op, dict(e.args), e.line, e.auto)
             for e in time_program(parse(STREAM), load_hw("hbm-pim"), record=True).trace]
    with pytest.raises(CheckFailed, match="tCCD_AB violated"):
        check_trace(tight, hw, "stream.pim")


def test_a_standard_without_all_bank_mac_rejects_it(monkeypatch):
    cmds = tuple(k for k in KINDS if k != "MACab")
    rules = tuple(dataclasses.replace(r, prev=tuple(k for k in r.prev if k in cmds),
                                      next=tuple(k for k in r.next if k in cmds))
                  for r in hbm2_pim.RULES if r.name != "tCCD_AB")
    std = Standard("NO-AB-MAC", "test", dict(hbm2_pim.STANDARD.scopes), rules, commands=cmds)
    hw = _fourth(monkeypatch, std)
    with pytest.raises(SpecccError, match=r"MAC.ab is not a command of NO-AB-MAC") as err:
        time_program(parse(STREAM, "s.pim"), hw)
    assert err.value.location == "s.pim:3:3"
    time_program(parse("ACT ch=0 bank=0 row=0\nMAC ch=0 bank=0 row=0 col=0 slot=0 acc=0\n"), hw)


@pytest.mark.parametrize("bad, what", [
    (dict(scopes={"channel": "bus"}), "scopes must be exactly"),
    (dict(rules=(Rule("tX", "rank", ("ACT",), ("ACT",), "tRC", why="no such scope"),)),
     "rule tX: bad level"),
    (dict(commands=("ACT", "PRE"), rules=common.COMMAND_BUS), "rule tCMD names a command"),
    (dict(refresh="per-bank"), "refresh must be one of"),
])
def test_malformed_standard_fails_at_import(bad, what):
    args = dict(name="BAD", doc="test", scopes=dict(hbm2_pim.STANDARD.scopes), rules=())
    with pytest.raises(ValueError, match=what):
        Standard(**{**args, **bad})
