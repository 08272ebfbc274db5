"""The speculate pass: the @schedule program it writes round-trips through IR text, the
runtime reads resources and parameters from the program, and bad options are clear
errors. (Editing programs: test_rt_program.py.)"""
from __future__ import annotations

import pytest
from rt_helpers import run

from speccc.errors import SpecccError
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.ir.verifier import verify
from speccc.passmanager import PassManager
from speccc.runtime.runner import RunConfig, simulate
from speccc.runtime.program import Program


def speculate(m, spec):
    PassManager.parse(f"speculate{{{spec}}}").run(m)
    return Program.from_graph(m.graphs["schedule"])


@pytest.mark.parametrize("spec", ["schedule=none", "schedule=serial,gamma=2",
                                  "schedule=overlap,gamma=5,hw=aim-gddr6",
                                  "schedule=pipeinfer,stages=3,p_recovery=0.2"])
def test_schedule_round_trips_through_text(pairs, spec):
    m = pairs()
    s = speculate(m, spec)
    text = print_module(m)
    m2 = parse_module(text)
    verify(m2)
    assert Program.from_graph(m2.graphs["schedule"]) == s
    assert print_module(m2) == text


def test_channel_groups(pairs):
    m = pairs()
    assert speculate(m, "schedule=serial").groups == {"pim": list(range(8))}
    s = speculate(m, "schedule=serial,draft_channels=3")
    assert s.groups == {"pim.draft": [0, 1, 2], "pim.target": [3, 4, 5, 6, 7]}
    s = speculate(m, "schedule=pipeinfer,draft_channels=2,stages=2")
    assert s.on("target") == ["pim.target0", "pim.target1"]
    assert s.on("draft") == ["pim.draft"]
    assert s.groups["pim.target0"] == [2, 3, 4] and s.groups["pim.target1"] == [5, 6, 7]


def test_program_parameters_come_from_its_ops(pairs):
    m = pairs()
    s = speculate(m, "schedule=serial,gamma=3")
    assert (s.kind, s.gamma, s.speculative) == ("serial", 3, True)
    s = speculate(m, "schedule=none")
    assert (s.gamma, s.speculative) == (0, False)
    s = speculate(m, "schedule=overlap,gamma=2")
    assert s.gamma == 2   # its speculative draft (3 tokens) is not a block size


@pytest.mark.parametrize("spec,needle", [
    ("schedule=fast", "schedule must be one of"),
    ("schedule=serial,gamma=0", "gamma must be >= 1"),
    ("schedule=serial,placement=gpu", "placement must be one of"),
    ("schedule=serial,stages=2", "pipeline stages are a pipeinfer option"),
    ("schedule=pipeinfer,p_accept=1.5", "p_accept must be in [0, 1]"),
    ("schedule=pipeinfer,max_inflight=0", "max_inflight must be >= 1"),
    ("schedule=overlap,draft_channels=8", "needs 9 PIM channels"),
    ("schedule=serial,draft=drafty", "needs a @drafty graph"),
])
def test_bad_options(pairs, spec, needle):
    with pytest.raises(SpecccError, match=None) as e:
        speculate(pairs(), spec)
    assert needle in str(e.value)


def test_no_kv_cache_is_an_error(pairs):
    m = pairs()
    kv = m.graphs["draft"].attrs.pop("kv_cache")
    try:
        with pytest.raises(SpecccError, match="no KV cache"):
            speculate(m, "schedule=serial")
    finally:
        m.graphs["draft"].attrs["kv_cache"] = kv


def test_missing_schedule_is_an_error(pairs):
    m = parse_module(print_module(pairs()).split("graph @schedule")[0])
    with pytest.raises(SpecccError, match="run the speculate pass"):
        simulate(m, RunConfig())


def test_auto_draft_channels_follow_weight_bytes(pairs):
    m = pairs("llama-tiny", 0, 0.1, weights=False, layers=1)   # 1-layer draft, 2-layer target
    s = speculate(m, "schedule=overlap")
    assert len(s.groups["pim.draft"]) == 3   # 8 channels x the draft's share of weight bytes
    rep, _ = run(m, "schedule=overlap", acceptance=0.5, max_new_tokens=5)
    assert rep["channel_groups"] == {"pim.draft": 3, "pim.target": 5}


def test_preset_channel_groups_named_after_models_split_the_pair(pairs):
    """hbm3-pim-spec gives the draft its own 2-channel group and the target 14 channels
    of 8-lane PUs: speculate takes that split, and the runtime prices each model with its
    group's PUs (the target's verify of 5 positions is cheaper than on plain hbm3-pim)."""
    m = pairs("llama-tiny", 0, 0.1, weights=False, hidden=256, ffn=688, heads=8,
              kv_heads=4, layers=1)
    s = speculate(m, "schedule=serial,gamma=4,hw=hbm3-pim-spec")
    assert s.groups == {"pim.draft": [0, 1], "pim.target": list(range(2, 16))}
    assert speculate(m, "schedule=serial,gamma=4,hw=hbm3-pim").groups == {
        "pim": list(range(16))}
    from speccc.hw import load_hw
    from speccc.runtime.costs import ModelCosts

    def verify_ns(hw, groups, stage):
        c = ModelCosts(m.graphs["target"], load_hw(hw), groups, [stage])
        return sum(t.dur for t in c.forward(5, 64))
    plain = verify_ns("hbm3-pim", {"pim": list(range(16))}, "pim")
    spec = verify_ns("hbm3-pim-spec", s.groups, "pim.target")
    assert 0 < spec < plain
