"""Systems of several devices (speccc.hw.system), the gpu target and `speccc baseline`:
every baseline against its closed form."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from speccc.cli.main import main
from speccc.costmodel import allreduce_cost, roofline_gpu, weight_bytes
from speccc.dse.baseline import baseline_rows
from speccc.errors import SpecccError
from speccc.hw import load_hw
from speccc.hw.config import system_names
from speccc.hw.system import with_tp

SYSTEM_DIR = Path(__file__).resolve().parents[1] / "speccc" / "hw" / "systems"
TARGET, DRAFT = "llama2-7b", "llama-68m"


def test_system_presets_and_their_sources():
    assert system_names() == ["a100-80g", "attacc", "h100-80g"]
    for name in system_names():
        for line in (SYSTEM_DIR / f"{name}.toml").read_text().splitlines():
            if re.match(r"^\s*[A-Za-z_]+\s*=\s*[-0-9.]+", line):
                assert "#" in line, f"{name}: no source for: {line}"
    a100 = load_hw("a100-80g", system=True)
    assert (a100.gpu.peak_tflops, a100.gpu.mem_bandwidth_gbs) == (312.0, 2039.0)
    assert a100.pim is None and a100.npu is None and a100.system.xpu == "gpu"
    h100 = load_hw("h100-80g", system=True)
    assert (h100.gpu.peak_tflops, h100.gpu.mem_bandwidth_gbs) == (989.0, 3350.0)
    attacc = load_hw("attacc", system=True)
    stack = load_hw("hbm3-pim")
    assert attacc.pim.channels == 5 * stack.pim.channels
    assert attacc.derived()["capacity_bytes"] == 5 * stack.derived()["capacity_bytes"]
    assert attacc.system.pim_link is not None and attacc.npu is None


def test_compile_paths_refuse_systems():
    with pytest.raises(SpecccError, match="a100-80g is a system preset"):
        load_hw("a100-80g")
    r = CliRunner().invoke(main, ["hw", "show", "a100-80g", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["gpu"]["peak_tflops"] == 312.0
    r = CliRunner().invoke(main, ["hw", "list"])
    assert r.exit_code == 0 and "5 x hbm3-pim" in r.output and "h100-80g" in r.output


SYSTEM = """name = "s"
description = "d"
[system]
xpu = "gpu"
xpus = {xpus}
pim = "{pim}"
pim_devices = {n}
{links}
[gpu]
peak_tflops = 312.0
mem_bandwidth_gbs = 2039.0
mem_capacity_gib = 80.0
compute_efficiency = {eff}
memory_efficiency = 0.85
kernel_launch_ns = 4000.0
mem_pj_per_bit = 5.5
flop_pj = 0.32
static_power_w = 60.0
[link]
bandwidth_gbs = 64.0
latency_ns = 1000.0
energy_pj_per_bit = 1.3
"""
LINK = "[system.{0}]\nbandwidth_gbs = 300.0\nlatency_ns = 1000.0\nenergy_pj_per_bit = 1.3\n"


@pytest.mark.parametrize("fields, message", [
    (dict(n=2), r"\[system\] pim_devices: 2 with pim = 'none'"),
    (dict(xpus=2, links=""), r"\[system.xpu_link\]: missing section"),
    (dict(pim="hbm3-pim", n=5, links=LINK.format("xpu_link")),
     r"\[system.pim_link\]: missing section"),
    (dict(eff=1.5), r"\[gpu\] compute_efficiency: 1.5 is outside the plausible range"),
    (dict(pim="nosuch", n=1), r"\[system\] pim: unknown hardware preset 'nosuch'"),
])
def test_bad_system_files_name_the_key(tmp_path, fields, message):
    vals = dict(xpus=1, pim="none", n=0, links=LINK.format("xpu_link"), eff=0.8) | fields
    p = tmp_path / "s.toml"
    p.write_text(SYSTEM.format(**vals))
    with pytest.raises(SpecccError, match=message):
        load_hw(str(p), system=True)
    r = CliRunner().invoke(main, ["baseline", "--target", TARGET, "--system", str(p)])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output


@pytest.fixture(scope="module")
def pair():
    from speccc.dse.evaluate import resolve_model
    from speccc.runtime.runner import load_pair
    module, _ = load_pair(resolve_model(TARGET), resolve_model(DRAFT), shapes_only=True)
    return module


def test_gpu_op_cost_is_the_documented_roofline(pair):
    hw = load_hw("a100-80g", system=True)
    g = hw.gpu
    b = {"T": 1, "P": 64}
    for op in pair.graphs["target"].ops():
        if op.name != "linear":
            continue
        c = roofline_gpu(hw, op, b)
        w = weight_bytes(op, b)
        # never faster than the weights at the peak bandwidth; at most the efficiency off
        assert c.latency_ns >= w / g.mem_bandwidth_gbs
        assert c.latency_ns == pytest.approx(
            g.kernel_launch_ns + max(c.flops / (g.peak_tflops * 1e3 * g.compute_efficiency),
                                     c.bytes_moved / (g.mem_bandwidth_gbs
                                                      * g.memory_efficiency)))
        # tensor parallel: weights split over 2 GPUs, plus the all-reduce on row-parallel
        hw2 = with_tp(hw, 2)
        c2 = roofline_gpu(hw2, op, b)
        assert c2.latency_ns < c.latency_ns
        assert c2.latency_ns >= g.kernel_launch_ns + w / 2 / g.mem_bandwidth_gbs


def test_ring_allreduce_closed_form():
    hw = with_tp(load_hw("a100-80g", system=True), 4)
    lk = hw.system.xpu_link
    c = allreduce_cost(hw, 8192.0)
    assert c.latency_ns == pytest.approx(6 * lk.latency_ns + 6 * 8192 / 4 / lk.bandwidth_gbs)
    assert allreduce_cost(load_hw("a100-80g", system=True), 8192.0).latency_ns == 0.0


@pytest.fixture(scope="module")
def rows():
    out = baseline_rows(TARGET, DRAFT, ["a100-80g", "hbm3-pim-spec"], gamma=4,
                        alphas=(0.8,), best=False)
    return {(r["system"], r["baseline"]): r for r in out}


def test_gpu_ar_decode_within_the_efficiency_of_weight_bytes(rows, pair):
    hw = load_hw("a100-80g", system=True)
    g = hw.gpu
    ar = rows[("a100-80g", "gpu-ar")]
    w = streamed_weights(pair)
    kernels = sum(1 for op in pair.graphs["target"].ops()
                  if op.name not in ("weight", "const") and not _glue(op))
    t_ms = ar["itl_ms"]
    assert t_ms >= w / g.mem_bandwidth_gbs / 1e6                      # the hard bound
    assert t_ms >= w / (g.mem_bandwidth_gbs * g.memory_efficiency) / 1e6
    # and no slower than that plus launches, the KV and the host link (2 x 1 us + logits)
    slack = (kernels * g.kernel_launch_ns + 2 * hw.link.latency_ns + 64e3) / 1e6
    assert t_ms <= w / (g.mem_bandwidth_gbs * g.memory_efficiency) / 1e6 * 1.02 + slack
    assert ar["speedup"] == 1.0 and ar["reference"] == "a100-80g gpu-ar"


def streamed_weights(module) -> float:
    """Weight bytes a decode step streams: every weight GEMM's (the embedding gather
    reads one row of its table)."""
    return sum(weight_bytes(op, {}) for op in module.graphs["target"].ops()
               if op.name != "gather")


def _glue(op):
    from speccc.costmodel import is_glue
    return is_glue(op)


def test_gpu_spec_follows_the_acceptance_closed_form(rows):
    alpha, gamma = 0.8, 4
    e = (1 - alpha ** (gamma + 1)) / (1 - alpha)
    spec, ar = rows[("a100-80g", "gpu-spec")], rows[("a100-80g", "gpu-ar")]
    assert spec["accept_len"] == pytest.approx(e)
    # a memory-bound verify costs about one AR step, plus γ draft steps: speedup < E
    draft_ar = baseline_rows(DRAFT, DRAFT, ["a100-80g"], spec=False, best=False)[0]
    iteration = spec["itl_ms"] * e
    assert iteration == pytest.approx(ar["itl_ms"] + gamma * draft_ar["itl_ms"], rel=0.05)
    assert 1.0 < spec["speedup"] < e


def test_pim_and_npu_rows_against_their_rooflines(pair):
    hw = load_hw("hbm3-pim-spec")
    out = {r["baseline"]: r for r in baseline_rows(TARGET, DRAFT, ["hbm3-pim-spec"],
                                                   spec=False, best=False)}
    assert set(out) == {"attacc", "pim-only", "npu-only", "specpim"}   # no GPU here
    w = streamed_weights(pair)
    d = hw.derived()
    assert out["npu-only"]["itl_ms"] >= w / hw.npu.ext_bandwidth_gbs / 1e6
    assert out["pim-only"]["itl_ms"] >= w / d["peak_internal_gbs"] / 1e6
    assert out["pim-only"]["itl_ms"] < out["npu-only"]["itl_ms"]   # PIM's internal bandwidth
    assert all(r["schedule"] == "none" for r in out.values())


def test_specpim_row_uses_disjoint_channel_sets(rows):
    r = rows[("hbm3-pim-spec", "specpim")]
    n = load_hw("hbm3-pim-spec").pim.channels
    assert r["schedule"] == "serial" and 0 < r["draft_channels"] < n
    assert r["mapping"] == "specpim"


def test_attacc_puts_attention_on_pim_over_the_link(pair):
    out = {r["baseline"]: r for r in baseline_rows(TARGET, DRAFT, ["attacc"], spec=False,
                                                   best=False)}
    assert set(out) == {"gpu-ar", "attacc"}
    hw = load_hw("attacc", system=True)
    fc = streamed_weights(pair)
    # FC weights still stream from the GPU's memory; attention moved to the stacks
    assert out["attacc"]["itl_ms"] >= fc / hw.gpu.mem_bandwidth_gbs / 1e6
    from speccc.dse.evaluate import Evaluator, Study
    from speccc.dse.hwfile import hw_text
    from speccc.dse.space import Space
    space = Space((("hw", ("attacc",)), ("batch", (1,)), ("mapping", ("attacc",)),
                   ("draft_channels", (0,)), ("schedule", ("none",)), ("gamma", (1,))))
    study = Study(TARGET, DRAFT, space, (0.8,), hw_texts=(("attacc", hw_text("attacc")),))
    g = Evaluator(study).variant("attacc", "attacc", study)
    devices = {(op.name, op.attrs["device"]) for op in g.graphs["target"].ops()
               if "device" in op.attrs}
    assert ("attention", "pim") in devices and ("linear", "gpu") in devices
    assert not any(d == "pim" for name, d in devices if name != "attention")


def test_70b_does_not_fit_one_a100_but_fits_two():
    r = CliRunner().invoke(main, ["baseline", "--target", "llama2-70b", "--system",
                                  "a100-80g", "--no-best"])
    assert r.exit_code == 2, r.output
    assert "128.48 GiB weights" in r.output and "80.00 GiB" in r.output
    assert "--tp 2" in r.output and r.output.count("\n") == 1
    r = CliRunner().invoke(main, ["baseline", "--target", "llama2-70b", "--system",
                                  "a100-80g", "--tp", "2", "--no-best", "--json"])
    assert r.exit_code == 0, r.output
    ar = next(x for x in json.loads(r.output)["rows"] if x["baseline"] == "gpu-ar")
    hw = load_hw("a100-80g", system=True)
    assert ar["xpus"] == 2
    assert ar["itl_ms"] >= 128.48 * 2**30 / 2 / hw.gpu.mem_bandwidth_gbs / 1e6


def test_baseline_cli_table_and_no_gpu_for_tp_on_npu():
    r = CliRunner().invoke(main, ["baseline", "--target", "llama-68m", "--system",
                                  "a100-80g", "--no-best"])
    assert r.exit_code == 0, r.output
    assert "GPU autoregressive" in r.output and "GPU speculative" in r.output
    r = CliRunner().invoke(main, ["baseline", "--target", "llama-68m", "--system",
                                  "hbm3-pim-spec", "--tp", "2"])
    assert r.exit_code == 2 and "tensor parallelism is modelled for GPU" in r.output


@pytest.mark.parametrize("system, mapping", [("a100-80g", "all-gpu"), ("attacc", "attacc"),
                                             ("hbm3-pim-spec", "all-pim")])
def test_closed_form_matches_the_discrete_event_runtime(system, mapping):
    from speccc.dse.evaluate import Evaluator, Study
    from speccc.dse.hwfile import hw_text
    from speccc.dse.space import Space
    space = Space((("hw", (system,)), ("batch", (1,)), ("mapping", (mapping,)),
                   ("draft_channels", (0,)), ("schedule", ("none", "serial")),
                   ("gamma", (4,))))
    study = Study(TARGET, DRAFT, space, (0.8,), max_new_tokens=48,
                  hw_texts=((system, hw_text(system)),))
    ev = Evaluator(study)
    ar = [ev.evaluate(study, 0), ev.simulate(study, 0)]
    assert ar[1]["itl_ms"] == pytest.approx(ar[0]["itl_ms"], rel=1e-3)
    assert ar[1]["energy_per_token_mj"] == pytest.approx(ar[0]["energy_per_token_mj"],
                                                          rel=1e-3)
    closed, sim = ev.evaluate(study, 1), ev.simulate(study, 1)
    # per iteration (ms/token x tokens per iteration), at the acceptance length the
    # runtime's seeded draws realized: serial is exact in expectation, within the 5% that
    # docs/dse.md and test_dse.py hold `speccc dse`'s confirmations to
    assert sim["itl_ms"] * sim["accept_len"] == pytest.approx(
        closed["itl_ms"] * closed["accept_len"], rel=0.05)


def test_passes_on_systems_and_commands_that_refuse_them(tmp_path):
    from speccc import zoo
    p = tmp_path / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    pre = "fold{bind=T=1:P=16},canonicalize,fold,dce,fuse,dce,"
    r = CliRunner().invoke(main, ["opt", str(p), "-p", pre + "cost{hw=a100-80g}"])
    assert r.exit_code == 2 and "a100-80g has no npu (its devices: gpu)" in r.output
    r = CliRunner().invoke(main, ["opt", str(p), "-p", pre + "partition{hw=attacc,"
                                  "mapping=attacc,devices=gpu:pim,bind=T=1:P=16}"])
    assert r.exit_code == 0, r.output
    assert 'device = "gpu"' in r.output and 'device = "pim"' in r.output
    for cmd in (["run", "--target", str(p), "--prompt-ids", "1", "--max-new-tokens", "2",
                 "--schedule", "none", "--hw", "a100-80g"],
                ["compile", str(p), "--bind", "T=1,P=16", "--hw", "attacc", "-o",
                 str(tmp_path / "out")]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2 and "is a system preset" in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_attention_on_pim_pays_the_link_for_q_and_its_output(pair):
    from speccc.costmodel import pim_link_cost
    hw = load_hw("attacc", system=True)
    lk = hw.system.pim_link
    op = next(o for o in pair.graphs["target"].ops() if o.name == "attention")
    c = pim_link_cost(hw, op, {"T": 1, "P": 64})
    moved = 2 * 4096 * 2      # q in, context out: 32 heads x 128 x fp16 each; K, V stay
    assert c.bytes_moved == moved
    assert c.latency_ns == pytest.approx(2 * lk.latency_ns + moved / lk.bandwidth_gbs)
    # a device preset's PIM is the NPU's own DRAM: no link
    assert pim_link_cost(load_hw("hbm3-pim"), op, {"T": 1, "P": 64}).latency_ns == 0.0


def test_baseline_rows_for_several_gammas_in_one_call():
    """`gammas`: one speculative row per γ, each what a call with that `gamma` gives;
    the autoregressive row once."""
    kw = dict(alphas=(0.8,), max_new_tokens=16, best=False)
    many = baseline_rows(TARGET, DRAFT, ["a100-80g"], gammas=[2, 5], **kw)
    assert [r["baseline"] for r in many] == ["gpu-ar", "gpu-spec", "gpu-spec"]
    for g, row in zip((2, 5), many[1:]):
        one = next(r for r in baseline_rows(TARGET, DRAFT, ["a100-80g"], gamma=g, **kw)
                   if r["baseline"] == "gpu-spec")
        assert row["gamma"] == one["gamma"] == g
        assert row["itl_ms"] == pytest.approx(one["itl_ms"], rel=1e-12)
        assert row["energy_per_token_mj"] == pytest.approx(one["energy_per_token_mj"],
                                                           rel=1e-12)
    assert many[1]["itl_ms"] != many[2]["itl_ms"]
