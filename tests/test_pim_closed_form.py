"""The closed-form GEMV cost (targets/pim/closed_form.py, `--cost-model targets-fast`)
against the emulator: within 5% in its domain on every preset, exact counts, emulation
outside the domain, and the default calibration untouched."""
from __future__ import annotations

import pytest

from speccc.hw import load_hw
from speccc.hw.config import preset_names
from speccc.targets.pim import closed_form
from speccc.targets.pim.cost import _emulate, gemv_program, gemv_run
from speccc.targets.pim.layout import plan_matrix

# (M, K): LLaMA-7B/13B projections, attention-sized and small-but-in-domain matrices
SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (8192, 1024), (5120, 5120),
          (2048, 512), (512, 2048), (1024, 1024), (256, 4096), (32000, 4096)]


def _cases(hw):
    slots = hw.pim.token_slots
    runs = [(1, 1, 1), (3, 2, 1)]
    runs += sorted({(1, 1, t) for t in (2, 3, slots) if 1 < t <= slots})
    return runs


def _grid():
    for name in preset_names():
        hw = load_hw(name)
        for M, K in SHAPES:
            if closed_form.in_domain(hw, M, K):
                yield name, M, K


@pytest.mark.parametrize("name,M,K", list(_grid()))
def test_within_five_percent_in_domain(name, M, K):
    hw = load_hw(name)
    pl = plan_matrix(hw, M, K)
    for count, reps, tokens in _cases(hw):
        exact = _emulate(hw, pl.Mp, pl.Kp, count, reps, tokens)
        fast = closed_form.closed_form_run(hw, pl.Mp, pl.Kp, count, reps, tokens)
        where = f"{name} {M}x{K} count={count} reps={reps} tokens={tokens}"
        assert fast is not None, where
        assert abs(fast.ns / exact.ns - 1) <= 0.05, (where, fast.ns, exact.ns)
        assert abs(fast.energy_pj / exact.energy_pj - 1) <= 0.05, (where, fast, exact)
        # counts come from the listing itself: exact
        assert (fast.bytes_internal, fast.bytes_external, fast.lane_macs) == \
            (exact.bytes_internal, exact.bytes_external, exact.lane_macs), where


def test_every_preset_has_domain_shapes():
    covered = {name for name, _, _ in _grid()}
    assert covered == set(preset_names())


def test_outside_domain_falls_back_to_emulation():
    hw = load_hw("hbm3-pim")
    M, K = 1024, 1024                        # two row visits per channel: off-domain
    assert not closed_form.in_domain(hw, M, K)
    assert closed_form.closed_form_run(hw, M, K, 1, 1) is None
    assert gemv_run(hw, M, K, 1, 1, fast=True) == gemv_run(hw, M, K, 1, 1)


def test_default_path_is_the_emulator():
    hw = load_hw("hbm-pim")
    pl = plan_matrix(hw, 4096, 4096)
    emulated = _emulate(hw, pl.Mp, pl.Kp, 1, 1, 1)
    assert gemv_run(hw, 4096, 4096, 1, 1) == emulated
    fast = gemv_run(hw, 4096, 4096, 1, 1, fast=True)
    assert not fast.exact and fast != emulated


def test_listing_counts_match_the_scheduler():
    from speccc.targets.pim.emulator import time_program
    for name in ("aim-gddr6-x4", "hbm-pim", "hbm3-pim-x8"):
        hw = load_hw(name)
        prog = gemv_program(hw, 1024, 1024, 2, 1, min(2, hw.pim.token_slots))
        res = time_program(prog, hw, refresh=False)   # refresh re-activates open rows
        got = closed_form.listing_counts(prog, hw)
        assert got["act_banks"] == res.activations
        assert got["int_bursts"] * hw.pim.burst_bytes == res.bytes_internal
        assert got["ext_bursts"] * hw.pim.burst_bytes == res.bytes_external
        assert got["macs"] == res.lane_macs


def test_targets_fast_estimator_prices_pim_in_closed_form():
    from speccc.runtime.costs import COST_MODELS, estimators
    assert "targets-fast" in COST_MODELS
    est = estimators("targets-fast")
    assert est["pim"].__name__ == "_pim_closed_form" and "npu" in est
    assert estimators("targets") is None     # the registered targets, unchanged


def test_run_targets_fast_off_domain_equals_targets(tmp_path):
    """`speccc run --cost-model targets-fast` end to end: llama-tiny's GEMVs are far
    below the domain, so every one is emulated and the report is the targets one."""
    import json

    from cli_helpers import invoke as cli
    from speccc import zoo
    draft, target = zoo.build_pair("llama-tiny", mode="decode", weights=False)
    zoo.save(draft, tmp_path / "d.onnx")
    zoo.save(target, tmp_path / "t.onnx")
    reports = []
    for model in ("targets", "targets-fast"):
        r = cli("run", "--target", tmp_path / "t.onnx", "--draft", tmp_path / "d.onnx",
                "--acceptance", 0.8, "--max-new-tokens", 8, "--hw", "hbm-pim",
                "--cost-model", model, "--json")
        assert r.exit_code == 0, r.output
        reports.append(json.loads(r.stdout))
    for key in ("tokens_per_s", "ttft_ms", "itl_ms", "energy_per_token_mj"):
        assert reports[0][key] == reports[1][key], key
