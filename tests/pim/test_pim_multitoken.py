"""Multi-token row visits (MACN.ab): a row opened once serves every buffered token.

Results equal numpy per token (fp32) and equal the one-token listing bit for bit in the
preset's precision; timing follows the PU's throughput (max(1, T/L) weight passes plus
the extra buffer loads); the checker enforces PU throughput and buffer capacity."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from speccc.errors import CheckFailed, SpecccError
from speccc.hw import load_hw, preset_names
from speccc.targets.pim.checker import check_program
from speccc.targets.pim.cost import gemv_run
from speccc.targets.pim.emulator import PimEmulator, time_program
from speccc.targets.pim.gemv import gemv_body, gemv_tokens
from speccc.targets.pim.layout import gemv_input, gemv_output, layout_matrix, plan_matrix
from speccc.targets.pim.listing import Program, cmd, format_program, parse

PRESETS = preset_names()
MULTI = [n for n in PRESETS if load_hw(n).pim.token_slots > 1]


def tokens_program(hw, pl, T):
    stream = (pl.Kp + pl.tile_elems) // pl.lanes
    return Program(tuple(gemv_tokens(hw, pl, T, stream=stream)) + (cmd("SYNC"),), hw.name,
                   "tokens.pim")


def run_tokens(hw, W, X, mode):
    pl = layout_matrix(hw, W)
    emu = PimEmulator(hw, mode=mode)
    emu.load_image(pl.image)
    emu.set_input(np.concatenate([gemv_input(pl, x) for x in X]))
    prog = tokens_program(hw, pl, len(X))
    res = emu.run(prog)
    return np.stack([gemv_output(pl, emu.outputs, r * pl.outputs) for r in range(len(X))]), prog, res


def test_variants_are_shipped_with_multi_token_pus():
    assert {"aim-gddr6-x4", "hbm3-pim-x8"} <= set(MULTI)
    x4 = load_hw("aim-gddr6-x4")
    assert (x4.pim.pu.mac_lanes, x4.pim.token_slots) == (4, 4)
    # the MAC rate derives from lanes x mac_lanes x PU clock, not from the column timing
    assert x4.derived()["peak_pim_macs_per_s"] == 4 * load_hw("aim-gddr6").derived()["peak_pim_macs_per_s"]
    assert load_hw("hbm-pim").derived()["peak_pim_macs_per_s"] * 2 == pytest.approx(1.2288e12)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("T", [1, 3, 5, 9])
def test_t_token_gemv_equals_numpy_per_token(name, T):
    hw = load_hw(name)
    rng = np.random.default_rng(T)
    W = rng.standard_normal((150, 1100)).astype(np.float32)
    X = rng.standard_normal((T, 1100)).astype(np.float32)
    got, prog, res = run_tokens(hw, W, X, "fp32")
    np.testing.assert_allclose(got, X @ W.T, rtol=1e-5, atol=1e-4)
    text = format_program(prog)
    assert ("MACN.ab" in text) == (min(T, hw.pim.token_slots) > 1)
    assert parse(text) == dataclasses.replace(prog, name="<listing>")
    # device precision: each token's arithmetic is the one-token listing's, bit for bit
    dev, _, _ = run_tokens(hw, W, X, "device")
    for r in range(T):
        one, _, _ = run_tokens(hw, W, X[r:r + 1], "device")
        np.testing.assert_array_equal(dev[r], one[0])
    one_token = time_program(tokens_program(hw, plan_matrix(hw, 150, 1100), 1), hw)
    assert res.lane_macs == T * one_token.lane_macs


@pytest.mark.parametrize("name", MULTI)
def test_t_token_timing_follows_pu_throughput(name):
    """t(T) is within 10% of max(1, T/L) x t(1) plus the extra buffer loads (T-1 more
    input vectors and read-outs over each pseudo-channel's bus); beyond the buffer's
    token slots T splits into ceil(T / slots) row visits."""
    hw = load_hw(name)
    p, L = hw.pim, hw.pim.pu.mac_lanes
    pl = plan_matrix(hw, 4096, 4096)
    t1 = time_program(tokens_program(hw, pl, 1), hw).ns
    per_pc = pl.external_bytes(hw) / (len(pl.channels) * p.pseudo_channels)
    load = per_pc / (p.burst_bytes / (p.timing.tBL * p.timing.tCK_ns))   # ns per token
    for T in sorted({2, L // 2, L, p.token_slots}):
        t = time_program(tokens_program(hw, pl, T), hw).ns
        ideal = max(1.0, T / L) * t1
        assert 0.9 * ideal <= t <= 1.1 * (ideal + (T - 1) * load), (T, t, ideal, load)
    T = 2 * p.token_slots
    t = time_program(tokens_program(hw, pl, T), hw).ns
    two = 2 * time_program(tokens_program(hw, pl, p.token_slots), hw).ns
    assert t == pytest.approx(two, rel=0.05)


@pytest.mark.parametrize("name", PRESETS)
def test_one_token_listing_is_unchanged(name):
    hw = load_hw(name)
    pl = plan_matrix(hw, 1000, 3000)
    assert gemv_tokens(hw, pl, 1, stream=99) == gemv_body(hw, pl, sync=False)
    if hw.pim.token_slots == 1:   # shipped presets: verify costs one weight pass per token
        one = gemv_run(hw, 4096, 4096, 1, 1).ns
        assert gemv_run(hw, 4096, 4096, 1, 5).ns == pytest.approx(5 * one, rel=0.1)


def test_cost_prices_verify_by_pu_lanes():
    hw = load_hw("hbm3-pim-x8")
    one, five = gemv_run(hw, 11008, 4096, 1, 1).ns, gemv_run(hw, 11008, 4096, 1, 5).ns
    assert five < 1.5 * one
    base = load_hw("hbm3-pim")
    assert gemv_run(base, 11008, 4096, 1, 1).ns == pytest.approx(one)


def slow_pu(lanes=2):
    """aim-gddr6-x4 whose PU has fewer MAC lanes than buffered tokens."""
    hw = load_hw("aim-gddr6-x4")
    pu = dataclasses.replace(hw.pim.pu, mac_lanes=lanes)
    return dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, pu=pu))


LISTING = """.hw aim-gddr6-x4
@0 ACT.ab ch=0 row=3
@100 MACN.ab ch=0 row=3 col=0 slot=0 acc=0 n=4
@{t} MACN.ab ch=0 row=3 col=1 slot=1 acc=0 n=4
"""


def stamped(t):
    return parse(LISTING.format(t=t), name="pu.pim")


def test_checker_enforces_pu_throughput():
    hw = slow_pu(2)                 # 4 tokens at 2 per PU clock: 2 clocks = 4 cycles
    assert hw.pim.tPU == 2
    check_program(stamped(104), hw)
    with pytest.raises(CheckFailed, match="tPU violated: MACN.ab at cycle 102 .* needs 4"):
        check_program(stamped(102), hw)
    check_program(stamped(102), load_hw("aim-gddr6-x4"))    # 4 lanes: one clock
    # the scheduler issues at the PU's pace
    prog = parse(LISTING.replace("@0 ", "").replace("@100 ", "").replace("@{t} ", ""), name="s.pim")
    assert time_program(prog, hw).cycles - time_program(prog, load_hw("aim-gddr6-x4")).cycles == 2


@pytest.mark.parametrize("bad,needle", [
    ("n=5", "n 5 out of range"),
    ("slot=192 acc=0 n=2", "slot 192 out of range .* token 1 of n=2"),
    ("slot=0 acc=3 n=2", "acc 3 out of range"),
    ("n=g", "a token count is a constant"),
])
def test_checker_enforces_buffer_slots(bad, needle):
    op = "MACN.ab ch=0 row=3 col=0 " + (bad if "slot" in bad else f"slot=0 acc=0 {bad}")
    text = f".hw aim-gddr6-x4\nACT.ab ch=0 row=3\nloop g 2 {{\n  {op}\n}}\n"
    with pytest.raises(SpecccError, match=needle):
        check_program(parse(text, name="b.pim"), load_hw("aim-gddr6-x4"))
    with pytest.raises(SpecccError, match="out of range|constant"):
        check_program(parse(text.replace("aim-gddr6-x4", "aim-gddr6"), name="b.pim"),
                      load_hw("aim-gddr6"))


def test_macn_example_in_isa_md_runs():
    """The documented example (ISA.md) parses, checks and computes per token."""
    from pathlib import Path
    import speccc.targets.pim as pim_pkg
    text = (Path(pim_pkg.__file__).parent / "ISA.md").read_text()
    block = text.split("<!-- macn-example -->")[1].split("```")[1]
    hw = load_hw("aim-gddr6-x4")
    prog = parse(block, name="isa.pim")
    check_program(prog, hw)
    emu = PimEmulator(hw, mode="fp32")
    row = np.arange(64 * 16, dtype=np.float32).reshape(64, 16) / 1000
    emu.load_image({(0, b, 5): row for b in range(16)})
    xs = np.random.default_rng(1).standard_normal((3, 64 * 16)).astype(np.float32)
    emu.set_input(xs)
    emu.run(prog)
    for i in range(3):
        assert emu.outputs[i][0, 0] == pytest.approx(float(row.reshape(-1) @ xs[i]), rel=1e-5)
    assert math.isfinite(emu.outputs[0][0, 0])
