"""GEMV layout + generator: the functional emulator equals numpy for any M x K."""
import numpy as np
import pytest

from speccc.errors import SpecccError
from speccc.hw import load_hw
from speccc.targets.pim.emulator import PimEmulator
from speccc.targets.pim.functional import round_to
from speccc.targets.pim.gemv import gemv_program, run_gemv
from speccc.targets.pim.layout import gemv_output, layout_matrix, plan_matrix
from speccc.targets.pim.listing import format_program, parse

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]
SHAPES = [(1, 1), (64, 100), (300, 700), (513, 1041)]
UNIT = {"fp16": 2.0 ** -11, "bf16": 2.0 ** -8, "fp32": 2.0 ** -24}


def data(M, K, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal(K).astype(np.float32)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("M,K", SHAPES)
def test_fp32_mode_equals_numpy(name, M, K):
    W, x = data(M, K)
    y, res = run_gemv(load_hw(name), W, x, mode="fp32")
    ref = W @ x
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))
    assert res.cycles > 0


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("M,K", SHAPES[1:])
def test_device_precision_within_its_rounding_bound(name, M, K):
    """Against the exact product of the preset-rounded operands, the error is within the
    first-order bound of the roundings an output goes through: one per MAC into the
    accumulator (K / lanes of them), plus the read-out rounding (of each tile's partial
    sum in "tiles" order, so bounded by the absolute mass)."""
    hw = load_hw(name)
    pu = hw.pim.pu
    W, x = data(M, K, seed=1)
    y, _ = run_gemv(hw, W, x, mode="device")
    Wq = round_to(pu.mul_dtype, W).astype(np.float64)
    xq = round_to(pu.mul_dtype, x).astype(np.float64)
    exact = Wq @ xq
    mass = np.abs(Wq) @ np.abs(xq)
    macs = -(-K // pu.lanes)
    tiles = plan_matrix(hw, M, K).order == "tiles"
    readout = mass if tiles else np.abs(exact)
    bound = (macs + 2) * UNIT[pu.acc_dtype] * mass + 2 * UNIT[pu.out_dtype] * readout
    assert np.all(np.abs(y - exact) <= bound)
    # and it is an fp16-grade GEMV against the unrounded fp32 reference
    ref = W.astype(np.float64) @ x
    assert np.median(np.abs(y - ref) / mass) < 2 * UNIT[pu.mul_dtype]


def test_layout_geometry_and_padding():
    hw = load_hw("hbm-pim")
    pl = layout_matrix(hw, np.ones((300, 700), np.float32), base=10)
    assert (pl.sets, pl.per_row, pl.tile_slots) == (2, 4, 8)
    assert pl.tile_elems == 128 and pl.tiles == 6 and pl.Kp == 768
    # outputs per channel and pass: 2 pcs x 2 bank sets x 4 per row x 8 PUs = 128
    assert pl.channels == (0, 1, 2) and pl.passes == 1 and pl.Mp == 3 * 128
    assert pl.rows_used == 7
    rows = {k[2] for k in pl.image}
    assert rows == set(range(10, 16))                   # guard row 16 holds no data
    assert all(v.shape == (32, 16) for v in pl.image.values())
    total = sum(float(v.sum()) for v in pl.image.values())
    assert total == 300 * 700                           # every weight once, padding zero


def test_plan_errors_and_custom_channels():
    hw = load_hw("aim-gddr6")
    pl = plan_matrix(hw, 4096, 4096, channels=range(8, 16))
    assert pl.channels == tuple(range(8, 16)) and pl.passes == 32
    with pytest.raises(SpecccError, match="needs rows 16380..16412"):
        plan_matrix(hw, 4096, 4096, base=16380)
    with pytest.raises(SpecccError, match="need distinct channels"):
        plan_matrix(hw, 64, 64, channels=[40])
    with pytest.raises(SpecccError, match="never read out"):
        gemv_output(pl, {})


def test_program_is_small_and_canonical():
    hw = load_hw("aim-gddr6")
    prog = gemv_program(hw, plan_matrix(hw, 4096, 4096))
    text = format_program(prog)
    assert len(text.splitlines()) < 40
    assert parse(text, "g.pim") == prog


def test_emulator_api_with_offsets():
    """Two GEMVs in one program, results at different host destinations."""
    hw = load_hw("hbm3-pim")
    W1, x1 = data(200, 300, 2)
    W2, _ = data(100, 300, 3)
    p1 = layout_matrix(hw, W1, base=0)
    p2 = layout_matrix(hw, W2, base=p1.rows_used)
    from speccc.targets.pim.gemv import gemv_input
    stream = gemv_input(p1, x1)
    prog1 = gemv_program(hw, p1, dst=0)
    prog2 = gemv_program(hw, p2, dst=p1.outputs)
    prog = type(prog1)(prog1.body + prog2.body, hw.name)
    emu = PimEmulator(hw, mode="fp32")
    emu.load_image({**p1.image, **p2.image})
    emu.set_input(stream)
    emu.run(prog)
    y1 = gemv_output(p1, emu.state.host_out, 0)
    y2 = gemv_output(p2, emu.state.host_out, p1.outputs)
    np.testing.assert_allclose(y1, W1 @ x1, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(y2, W2 @ x1, rtol=1e-5, atol=1e-4)


def test_pu_ops_semantics():
    hw = load_hw("aim-gddr6")
    emu = PimEmulator(hw, mode="fp32")
    emu.load_image({(0, b, 0): np.full((64, 16), b + 1.0, np.float32) for b in range(16)})
    emu.set_input(np.concatenate([np.full(16, 0.5), np.arange(16) - 8.0]))
    text = """
    WRGB ch=0 slot=0 src=0
    WRGB ch=0 slot=1 src=1
    ACT.ab ch=0 row=0
    MAC.ab ch=0 row=0 col=0 slot=0 acc=0
    EWADD ch=0 acc=0 slot=1
    AF ch=0 acc=0 fn=relu
    RDMAC ch=0 acc=0 dst=7
    RDMAC ch=0 acc=0 dst=8
    PREA ch=0
    """
    emu.run(parse(text))
    mac = (np.arange(16) + 1.0) * 16 * 0.5             # one MAC: 16 lanes x (b+1) x 0.5
    np.testing.assert_allclose(emu.state.host_out[7][:, 0], np.maximum(mac + np.arange(16) - 8, 0))
    assert not emu.state.host_out[8].any()              # RDMAC cleared the register


def test_missing_host_input_is_located():
    emu = PimEmulator(load_hw("hbm-pim"))
    with pytest.raises(SpecccError, match=r"^x.pim:1:1: WRGB reads host input burst 3"):
        emu.run(parse("WRGB ch=0 slot=0 src=3\n", "x.pim"))


@pytest.mark.parametrize("name", ["aim-gddr6", "hbm3-pim"])
def test_both_loop_orders_agree(name):
    hw = load_hw(name)
    W, x = data(700, 1500, seed=4)
    y_p, r_p = run_gemv(hw, W, x, mode="fp32", order="passes", channels=(0, 1))
    y_t, r_t = run_gemv(hw, W, x, mode="fp32", order="tiles", channels=(0, 1))
    np.testing.assert_allclose(y_t, y_p, rtol=1e-5, atol=1e-4)
    assert r_t.bytes_external < r_p.bytes_external       # why "auto" picks tiles here
    assert plan_matrix(hw, 4096, 4096).order == "tiles"          # many passes
    assert plan_matrix(load_hw("hbm-pim"), 700, 1500).order == "passes"
    with pytest.raises(SpecccError, match="needs one bank set"):
        plan_matrix(load_hw("hbm-pim"), 700, 1500, order="tiles")
