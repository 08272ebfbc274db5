"""GPU static power (speccc.hw.system [gpu] static_power_w): every GPU's static draw is
charged over each op's time, once per launch for a per-request op at batch B, and it
reaches `speccc baseline`'s energy per token."""
from __future__ import annotations

import dataclasses

import pytest

from speccc.costmodel import gpu_static_pj, per_request_scale, roofline_gpu
from speccc.dse.baseline import baseline_rows
from speccc.hw import load_hw
from speccc.hw.system import with_tp


def _without_static(hw):
    return dataclasses.replace(hw, gpu=dataclasses.replace(hw.gpu, static_power_w=0.0))


@pytest.fixture(scope="module")
def ops():
    from speccc.runtime.runner import load_pair
    g = load_pair("llama-68m", "llama-68m", shapes_only=True)[0].graphs["target"]
    return {op.name: op for op in g.ops() if op.name in ("linear", "attention")}


@pytest.mark.parametrize("tp", [1, 2])
def test_static_energy_is_power_times_op_time_on_every_gpu(ops, tp):
    hw = with_tp(load_hw("a100-80g", system=True), tp)
    assert hw.gpu.static_power_w == 60.0
    bind = {"T": 1, "P": 64, "B": 1}
    for op in ops.values():
        c, bare = roofline_gpu(hw, op, bind), roofline_gpu(_without_static(hw), op, bind)
        assert c.latency_ns == bare.latency_ns
        # W x ns = 1e-9 J = 1e3 pJ, on each of the tp GPUs
        assert c.energy_pj - bare.energy_pj == pytest.approx(60.0 * tp * c.latency_ns * 1e3)


def test_batched_attention_charges_one_launchs_static_energy(ops):
    hw = load_hw("h100-80g", system=True)
    op = ops["attention"]
    c = roofline_gpu(hw, op, {"T": 1, "P": 64, "B": 1})
    lat, en = per_request_scale(hw, "gpu", op, c.latency_ns, c.energy_pj, 8)
    launch = hw.gpu.kernel_launch_ns
    assert lat == pytest.approx(launch + 8 * (c.latency_ns - launch))
    static = gpu_static_pj(hw, lat)                 # the batch's whole kernel time
    dynamic = 8 * (c.energy_pj - gpu_static_pj(hw, c.latency_ns))
    assert en == pytest.approx(static + dynamic)


def test_gpu_baseline_energy_per_token_includes_static_power(tmp_path):
    """GPU AR decode: the same system with static_power_w = 0 spends less per token by
    the static power over the GPUs' busy time, which is most of the wall time per token
    (the rest: host transfers, KV appends)."""
    import re

    from speccc.dse.hwfile import hw_text
    bare = tmp_path / "a100-nostatic.toml"
    bare.write_text(re.sub(r"(?m)^static_power_w = [0-9.]+", "static_power_w = 1e-6",
                           hw_text("a100-80g")))
    kw = dict(spec=False, best=False, max_new_tokens=16)
    ar, ar0 = (next(r for r in baseline_rows("llama2-7b", "llama-68m", [s], **kw)
                    if r["baseline"] == "gpu-ar") for s in ("a100-80g", str(bare)))
    assert ar["itl_ms"] == ar0["itl_ms"]
    static_mj = ar["energy_per_token_mj"] - ar0["energy_per_token_mj"]
    ms_per_token = 1e3 / ar["tokens_per_s"]     # wall time (prefill too) per token
    assert 0.9 * 60.0 * ms_per_token < static_mj <= 60.0 * ms_per_token   # W x ms = mJ
