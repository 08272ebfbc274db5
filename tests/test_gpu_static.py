"""GPU static power (speccc.hw.system [gpu] static_power_w): a powered board draws it the
whole run, busy or waiting, so it is charged once per run over the run's wall time
(`gpu_static_pj`, part of `standby_pj` with the PIM DRAM's background power), by the
runtime's report (`gpu_static_mj`) and by the dse closed form alike; GPU op energies are
dynamic only."""
from __future__ import annotations

import dataclasses
import re

import pytest

from speccc.costmodel import (gpu_static_pj, per_request_scale, pim_background_pj,
                              roofline_gpu, standby_pj)
from speccc.dse.baseline import baseline_rows
from speccc.dse.hwfile import hw_text
from speccc.hw import load_hw
from speccc.hw.system import with_tp

KEY = re.compile(r"(?m)^static_power_w = [0-9.]+")


def _without_static(hw):
    return dataclasses.replace(hw, gpu=dataclasses.replace(hw.gpu, static_power_w=0.0))


EPS = 1e-6    # W: the smallest static_power_w the schema takes (it must be positive)
DW = 60.0 - EPS   # W: a100-80g's and attacc's static power over the near-zero file's


def _zero_static_file(name: str, path):
    """`name`'s system TOML with static_power_w = EPS (about 0), written to path."""
    text, n = KEY.subn(f"static_power_w = {EPS}", hw_text(name))
    assert n == 1
    path.write_text(text)
    assert load_hw(str(path), system=True).gpu.static_power_w == EPS
    return str(path)


@pytest.fixture(scope="module")
def ops():
    from speccc.runtime.runner import load_pair
    g = load_pair("llama-68m", "llama-68m", shapes_only=True)[0].graphs["target"]
    return {op.name: op for op in g.ops() if op.name in ("linear", "attention")}


def test_static_pj_is_power_times_wall_time_on_every_gpu_and_zero_without_a_gpu():
    for name, w in (("a100-80g", 60.0), ("h100-80g", 100.0), ("attacc", 60.0)):
        hw = load_hw(name, system=True)
        assert hw.gpu.static_power_w == w
        # W x ns = 1e-9 J = 1e3 pJ, on each of the xpus GPUs
        assert gpu_static_pj(hw, 1e6) == pytest.approx(w * 1e6 * 1e3)
        assert gpu_static_pj(with_tp(hw, 4), 1e6) == pytest.approx(4 * w * 1e6 * 1e3)
    for name in ("hbm-pim", "hbm3-pim-spec"):       # device presets: no GPU
        assert gpu_static_pj(load_hw(name), 1e9) == 0.0
    att = load_hw("attacc", system=True)
    assert standby_pj(att, 1e6) == pytest.approx(
        pim_background_pj(att, 1e6) + 60.0 * 1e6 * 1e3)
    assert standby_pj(load_hw("a100-80g", system=True), 1e6) == gpu_static_pj(
        load_hw("a100-80g", system=True), 1e6)


@pytest.mark.parametrize("tp", [1, 2])
def test_gpu_op_energy_is_dynamic_only(ops, tp):
    """static_power_w changes no op's price: it is not charged per op any more."""
    hw = with_tp(load_hw("a100-80g", system=True), tp)
    bind = {"T": 1, "P": 64, "B": 1}
    for op in ops.values():
        c, bare = roofline_gpu(hw, op, bind), roofline_gpu(_without_static(hw), op, bind)
        assert c == bare


def test_batched_attention_energy_scales_by_batch(ops):
    """B requests' attention: one launch's time, B x the dynamic energy (no static)."""
    hw = load_hw("h100-80g", system=True)
    op = ops["attention"]
    c = roofline_gpu(hw, op, {"T": 1, "P": 64, "B": 1})
    lat, en = per_request_scale(hw, "gpu", op, c.latency_ns, c.energy_pj, 8)
    launch = hw.gpu.kernel_launch_ns
    assert lat == pytest.approx(launch + 8 * (c.latency_ns - launch))
    assert en == pytest.approx(8 * c.energy_pj, rel=1e-12)


KW = dict(spec=False, best=False, max_new_tokens=16)


def _row(system: str, baseline: str, **kw) -> dict:
    return next(r for r in baseline_rows("llama2-7b", "llama-68m", [system], **KW, **kw)
                if r["baseline"] == baseline)


def test_gpu_only_closed_form_charges_power_times_wall_time(tmp_path):
    """GPU AR on a100-80g (closed form): the run with static_power_w about 0 spends less
    per token by exactly 60 W x the wall time per token (prefill included)."""
    bare = _zero_static_file("a100-80g", tmp_path / "a100-nostatic.toml")
    ar, ar0 = _row("a100-80g", "gpu-ar"), _row(bare, "gpu-ar")
    assert ar["itl_ms"] == ar0["itl_ms"] and ar["tokens_per_s"] == ar0["tokens_per_s"]
    static_mj = ar["energy_per_token_mj"] - ar0["energy_per_token_mj"]
    ms_per_token = 1e3 / ar["tokens_per_s"]     # wall time per token
    assert static_mj == pytest.approx(DW * ms_per_token, rel=1e-9)   # W x ms = mJ


@pytest.fixture(scope="module")
def reports(tmp_path_factory, request):
    """The runtime's reports (`speccc baseline --runtime`'s rows) of GPU AR on a100-80g
    and of the AttAcc-like row on attacc, each with static_power_w 60 W and about 0."""
    import speccc.runtime.runner as runner
    tmp = tmp_path_factory.mktemp("hw")
    out, real = {}, runner.simulate

    def capture(*a, **k):
        rep, rest = real(*a, **k)
        out.setdefault("reps", []).append(rep)
        return rep, rest

    mp = pytest.MonkeyPatch()
    mp.setattr(runner, "simulate", capture)
    try:
        for key, system, baseline in (
                ("a100", "a100-80g", "gpu-ar"),
                ("a100-0", _zero_static_file("a100-80g", tmp / "a100-0.toml"), "gpu-ar"),
                ("attacc", "attacc", "attacc"),
                ("attacc-0", _zero_static_file("attacc", tmp / "attacc-0.toml"), "attacc")):
            out["reps"] = []
            row = _row(system, baseline, runtime=True)
            assert row["feasible"], row
            out[key] = (row, out["reps"][-1])
    finally:
        mp.undo()
    return out


def test_runtime_report_charges_static_power_over_wall_time(reports):
    for key in ("a100", "attacc"):
        (row, rep), (row0, rep0) = reports[key], reports[key + "-0"]
        assert rep["time_ms"] == rep0["time_ms"] and rep["tokens"] == rep0["tokens"]
        assert rep0["gpu_static_mj"] == pytest.approx(EPS * rep0["time_ms"], rel=1e-12)
        # 60 W on the system's one GPU over the run (W x ms = mJ)
        assert rep["gpu_static_mj"] == pytest.approx(60.0 * rep["time_ms"], rel=1e-12)
        assert rep["energy_mj"] - rep["gpu_static_mj"] == pytest.approx(
            rep0["energy_mj"] - rep0["gpu_static_mj"], rel=1e-12)
        assert row["energy_per_token_mj"] == pytest.approx(
            rep["energy_mj"] / rep["generated_tokens"], rel=1e-12)


def test_attacc_gpu_draws_static_power_while_the_stacks_run_attention(reports):
    """On attacc the GPU waits while the PIM stacks compute attention: the static energy
    is charged over that wait too, so it exceeds what charging it per GPU op (over the
    GPU's busy time, the old rule) gave, by 60 W x the GPU's idle time."""
    (_, rep), (_, rep0) = reports["attacc"], reports["attacc-0"]
    gpu_busy_ms = rep["utilization"]["npu"] * rep["time_ms"]   # the xPU slot: the GPU
    idle_ms = rep["time_ms"] - gpu_busy_ms
    assert idle_ms > 0.01 * rep["time_ms"]        # the GPU does wait on attacc
    per_op_rule_mj = 60.0 * gpu_busy_ms           # what per-op charging gave
    assert rep["energy_mj"] - rep0["energy_mj"] == pytest.approx(
        DW * (gpu_busy_ms + idle_ms), rel=1e-9)
    assert rep["energy_mj"] - rep0["energy_mj"] > per_op_rule_mj + 0.5 * 60.0 * idle_ms
    # the PIM stacks' background power is charged over the same wall time
    assert rep["pim_background_mj"] == pytest.approx(60.5 * 80 * rep["time_ms"] * 1e-3,
                                                     rel=1e-12)
