"""Multi-token attention: a KV row opened once serves every query row of its kv head.

Verify (γ+1 positions) x the query heads of a GQA group share one kv head's keys and
values, so score (q·Kᵀ) and context (p·V) listings MAC each key/value column against up
to `token_slots` buffered query rows (MACN.ab). Results equal numpy per token (fp32) and
equal the one-slot listing bit for bit in the preset's precision (causal masking is on
the host, after the scores); time follows the PU's throughput plus the extra buffer loads
and read-outs; the cost model groups the same rows per visit."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from speccc.hw import load_hw, preset_names
from speccc.ir.opdefs import lookup
from speccc.targets.pim import kv_layout as kv
from speccc.targets.pim.codegen import kernel_for, op_dims, op_layouts, program_io
from speccc.targets.pim.emulator import PimEmulator, time_program
from speccc.targets.pim.listing import Program, check_ranges, cmd, format_program, parse

PRESETS = preset_names()
MULTI = [n for n in PRESETS if load_hw(n).pim.token_slots > 1]


def one_slot(hw):
    """The same device with a one-vector buffer and one accumulator set."""
    pu = dataclasses.replace(hw.pim.pu, vector_slots=1, acc_sets=1, mac_lanes=1)
    return dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, pu=pu))


def attention_kernel(hw, shapes, attrs, max_context):
    attrs = dict(attrs)
    regions = op_layouts("attention", hw, op_dims("attention", attrs, shapes),
                         max_context=max_context)
    n = max(r.channels for r in regions)
    attrs.update(pim_base_row=2, pim_channels=list(range(n)),
                 pim_rows=sum(r.rows for r in regions), pim_max_context=max_context)
    return kernel_for("attention", attrs, hw, shapes)


def case(H, G, T, S, D, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((1, H, T, D)).astype(np.float32)
    k = rng.standard_normal((1, G, S, D)).astype(np.float32)
    v = rng.standard_normal((1, G, S, D)).astype(np.float32)
    return [q, k, v]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("H,G,T,S", [(4, 2, 5, 37), (8, 1, 3, 3), (2, 2, 9, 70)])
def test_t_token_attention_equals_numpy_per_token(name, H, G, T, S):
    """Causal verify attention of T positions (S = cached + T keys; S == T is prefill):
    every position's context equals numpy, in fp32, through row visits of up to
    token_slots query rows; in device precision it equals the one-slot listing bit for
    bit (MACN.ab does each token's arithmetic exactly as MAC.ab)."""
    hw = load_hw(name)
    D = 32
    ins = case(H, G, T, S, D, seed=H * T + S)
    attrs = {"scale": 0.3, "causal": True}
    want = lookup("attention").ref(ins, {"scale": 0.3, "causal": True, "sliding_window": 0,
                                         "nan_to_zero": False})[0]
    k = attention_kernel(hw, [i.shape for i in ins], attrs, max_context=S + 8)
    (got,) = k.run(PimEmulator(hw, mode="fp32"), ins)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rows = (H // G) * T
    multi = min(rows, hw.pim.token_slots) > 1
    for _, prog in k.phases():
        text = format_program(prog)
        assert ("MACN.ab" in text) == multi
        assert parse(text) == dataclasses.replace(prog, name="<listing>")
        check_ranges(prog, hw)
    (dev,) = k.run(PimEmulator(hw, mode="device"), ins)
    single = one_slot(hw)
    k1 = attention_kernel(single, [i.shape for i in ins], attrs, max_context=S + 8)
    assert all("MACN.ab" not in format_program(p) for _, p in k1.phases())
    (dev1,) = k1.run(PimEmulator(single, mode="device"), ins)
    np.testing.assert_array_equal(dev, dev1)


def _listings(hw, length, T):
    kl = kv.plan_keys(hw, 128, 1, length)
    vl = kv.plan_values(hw, 128, 1, length, base=kl.rows)
    score = kv.score_body(hw, kl, length, heads=1, positions=T)
    ctx = kv.context_body(hw, vl, length, heads=1, positions=T)
    return {"score": (score, len(kl.channels)), "context": (ctx, vl.per_head)}


def _time(hw, body) -> float:
    return time_program(Program(tuple(body) + (cmd("SYNC"),), hw.name), hw).ns


@pytest.mark.parametrize("name", MULTI)
@pytest.mark.parametrize("phase", ["score", "context"])
def test_t_token_attention_timing_follows_pu_throughput(name, phase):
    """t(T) is within 10% of max(1, T/L) x t(1) plus, per extra token, its buffer loads
    and read-outs over one pseudo-channel's bus (the one-token listing's external bytes
    per pseudo-channel); beyond token_slots the rows split into visits of token_slots."""
    hw = load_hw(name)
    p, L, S = hw.pim, hw.pim.pu.mac_lanes, 4096
    body1, chans = _listings(hw, S, 1)[phase]
    t1 = _time(hw, body1)
    i, o = program_io(Program(tuple(body1), hw.name), hw)
    rate = p.burst_bytes / (p.timing.tBL * p.timing.tCK_ns)          # bytes per ns
    io = (i + o) / (chans * p.pseudo_channels) / rate                 # ns per token
    for T in sorted({2, L, p.token_slots}):
        t = _time(hw, _listings(hw, S, T)[phase][0])
        ideal = max(1.0, T / L) * t1
        assert 0.9 * ideal <= t <= 1.1 * (ideal + (T - 1) * io), (T, t, ideal, io)
        assert t < 0.9 * T * t1        # cheaper than T one-row visits
    full = _time(hw, _listings(hw, S, p.token_slots)[phase][0])
    two = _time(hw, _listings(hw, S, 2 * p.token_slots)[phase][0])
    assert two == pytest.approx(2 * full, rel=0.05)


@pytest.mark.parametrize("name", [n for n in PRESETS if n not in MULTI])
def test_one_slot_attention_listing_keeps_one_row_visits(name):
    """Published one-vector PUs: one row visit per query row, `loop qh`/`loop qt` as
    before multi-token visits (benchmarks/pim_fingerprint.py --compare is identical)."""
    hw = load_hw(name)
    for body, _ in _listings(hw, 600, 5).values():
        text = format_program(Program(tuple(body), hw.name))
        assert "MACN.ab" not in text and "loop qt 5" in text and "loop qg" not in text


def test_cost_model_groups_attention_rows_like_codegen():
    """pim_run prices a kv head's (query heads x positions) rows in groups of token_slots,
    as the listings visit them: on hbm3-pim-x8, 8 rows cost one group, 9 cost two."""
    from speccc.targets.pim.cost import gemv_run
    hw = load_hw("hbm3-pim-x8")
    assert kv.tokens_per_visit(hw, 40) == hw.pim.token_slots == 8
    one, eight, nine = (gemv_run(hw, 2048, 128, 1, r).ns for r in (1, 8, 9))
    assert eight < 2.5 * one and nine > eight * 1.05
    body8, body9 = (_listings(hw, 2048, T)["context"][0] for T in (8, 9))
    assert format_program(Program(tuple(body9), hw.name)).count("n=8") >= 1
    assert _time(hw, body9) > 1.05 * _time(hw, body8)


@pytest.mark.parametrize("name", PRESETS)
def test_batched_attention_keeps_each_requests_kv_in_its_own_region(name):
    """B requests: op_layouts stacks one keys and one values region per request (disjoint
    rows), the listings run request after request, and every request's causal verify
    attention equals numpy (fp32) and, in device precision, the same request run alone
    bit for bit."""
    hw = load_hw(name)
    B, H, G, T, S, D = 3, 4, 2, 3, 20, 32
    rng = np.random.default_rng(7)
    ins = [rng.standard_normal((B, H, T, D)).astype(np.float32),
           rng.standard_normal((B, G, S, D)).astype(np.float32),
           rng.standard_normal((B, G, S, D)).astype(np.float32)]
    attrs = {"scale": 0.25, "causal": True}
    shapes = [i.shape for i in ins]
    regions = op_layouts("attention", hw, op_dims("attention", attrs, shapes), max_context=S)
    assert [r.name for r in regions] == ["keys", "values", "keys1", "values1", "keys2", "values2"]
    spans = [(r.layout.base, r.layout.base + r.rows) for r in regions]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    want = lookup("attention").ref(ins, {"scale": 0.25, "causal": True, "sliding_window": 0,
                                         "nan_to_zero": False})[0]
    k = attention_kernel(hw, shapes, attrs, max_context=S)
    (got,) = k.run(PimEmulator(hw, mode="fp32"), ins)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (dev,) = k.run(PimEmulator(hw, mode="device"), ins)
    for r in range(B):
        alone = [x[r:r + 1] for x in ins]
        k1 = attention_kernel(hw, [a.shape for a in alone], attrs, max_context=S)
        (one,) = k1.run(PimEmulator(hw, mode="device"), alone)
        np.testing.assert_array_equal(dev[r:r + 1], one)


def test_batched_attention_needs_a_batched_placement():
    hw = load_hw("hbm3-pim")
    shapes = [(2, 4, 1, 32), (2, 2, 9, 32), (2, 2, 9, 32)]
    one = [(1,) + s[1:] for s in shapes]
    attrs = {"scale": 0.25}
    regions = op_layouts("attention", hw, op_dims("attention", attrs, one), max_context=16)
    attrs.update(pim_base_row=0, pim_channels=list(range(hw.pim.channels)),
                 pim_rows=sum(r.rows for r in regions), pim_max_context=16)
    from speccc.errors import SpecccError
    with pytest.raises(SpecccError, match="batch 2: KV for every request.*place it with these shapes bound"):
        kernel_for("attention", attrs, hw, shapes)
