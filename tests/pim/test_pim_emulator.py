"""Emulator: acceleration is exact, illegal programs fail located, results add up."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speccc.errors import SpecccError
from speccc.hw import load_hw
from speccc.targets.pim.emulator import PimEmulator, time_program
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import parse

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]


def both(prog, hw, **kw):
    fast = time_program(prog, hw, accelerate=True, **kw)
    slow = time_program(prog, hw, accelerate=False, **kw)
    return fast, slow


def same(fast, slow):
    a, b = fast.to_dict(), slow.to_dict()
    assert a == b


@pytest.mark.parametrize("name,M,K,channels", [
    ("hbm-pim", 1024, 2048, (0,)), ("hbm-pim", 300, 700, None),
    ("aim-gddr6", 2048, 3000, (3,)), ("aim-gddr6", 100, 1024, (0, 1)),
    ("hbm3-pim", 2048, 1500, (1,)), ("hbm3-pim", 640, 5000, (0, 1, 2)),
])
def test_acceleration_is_exact_on_gemv(name, M, K, channels):
    hw = load_hw(name)
    prog = gemv_program(hw, plan_matrix(hw, M, K, channels=channels))
    fast, slow = both(prog, hw)
    same(fast, slow)


def test_acceleration_is_exact_across_many_refreshes():
    hw = load_hw("hbm-pim")
    text = """
    loop r 300 {
      ACT.ab ch=0 row=r
      ACT.ab ch=0 sel=1 row=r
      loop c 8 {
        MAC.ab ch=0 row=r col=c slot=c acc=0
      }
      loop c 8 {
        WRGB ch=0 slot=c src=c
        MAC.ab ch=0 sel=1 row=r col=c slot=c acc=1
      }
      PREA ch=0
      RDMAC ch=0 acc=0 dst=r
    }
    """
    fast, slow = both(parse(text), hw)
    assert fast.refreshes > 20
    same(fast, slow)


@st.composite
def loop_program(draw):
    """Random row-stream loop nests (some legal, some not) on one of two channels."""
    ch, sel = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    n_row, n_col = draw(st.integers(1, 12)), draw(st.integers(1, 40))
    extra = draw(st.sampled_from(["", f"RDMAC ch={ch} acc=0 dst=r", f"AF ch={ch} acc=1 fn=relu",
                                  "SYNC", f"RD ch={ch} bank=1 row=r col=0 dst=0"]))
    body = [f"ACT.ab ch={ch} sel={sel} row=r", f"loop c {n_col} {{",
            f"  MAC.ab ch={ch} sel={sel} row=r col=c%32 slot=0 acc=0".replace("c%32", "c"
                                                                               if n_col <= 32 else "0"),
            *([f"  WRGB ch={ch} slot=1 src=c"] if draw(st.booleans()) else []),
            "}", extra, f"PRE.ab ch={ch} sel={sel}"]
    return f"loop r {n_row} {{\n" + "\n".join(l for l in body if l) + "\n}\n"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loop_program(), st.sampled_from(PRESETS))
def test_acceleration_is_exact_on_random_loops(text, name):
    hw = load_hw(name)
    prog = parse(text)
    try:
        fast = time_program(prog, hw, accelerate=True)
    except SpecccError as err:
        with pytest.raises(SpecccError) as again:
            time_program(prog, hw, accelerate=False)
        assert str(again.value) == str(err)
        return
    same(fast, time_program(prog, hw, accelerate=False))


@pytest.mark.parametrize("text,where,msg", [
    ("ACT ch=0 bank=1 row=2\nMAC ch=0 bank=2 row=2 col=0 slot=0 acc=0\n", "2:1", "closed (ACT it first)"),
    ("ACT ch=0 bank=1 row=2\nACT ch=0 bank=1 row=3\n", "2:1", "has row 2 open"),
    ("ACT.ab ch=0 row=4\nloop i 3 {\n  MAC.ab ch=0 row=4+i col=0 slot=0 acc=0\n}\n", "3:3",
     "open at row 4, not 5 [iteration i=1]"),
    ("ACT ch=0 bank=0 row=0\nREF ch=0\n", "2:1", "REF needs every bank"),
    ("WRGB ch=0 slot=99 src=0\n", "1:1", "slot 99 out of range"),
])
def test_illegal_programs_raise_located_errors(text, where, msg):
    with pytest.raises(SpecccError) as err:
        time_program(parse(text, "bad.pim"), load_hw("aim-gddr6"))
    assert str(err.value).startswith(f"bad.pim:{where}: ")
    assert msg in str(err.value)


FUZZ_OPS = st.sampled_from([
    "ACT ch={c} bank={b} row={r}", "ACT.ab ch={c} row={r}", "PRE ch={c} bank={b}",
    "PRE.ab ch={c}", "PREA ch={c}", "REF ch={c}", "RD ch={c} bank={b} row={r} col={x} dst=0",
    "WR ch={c} bank={b} row={r} col={x} src=0", "WRGB ch={c} slot={x} src={x}",
    "MAC ch={c} bank={b} row={r} col={x} slot={x} acc=0",
    "MAC.ab ch={c} row={r} col={x} slot={x} acc=0", "RDMAC ch={c} acc=0 dst={x}",
    "AF ch={c} acc=0 fn=gelu", "EWMUL ch={c} acc=0 slot=0", "EWADD ch={c} acc=0 slot=0", "SYNC"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FUZZ_OPS, st.integers(0, 3), st.integers(0, 20), st.integers(0, 3),
                          st.integers(0, 70)), max_size=12),
       st.sampled_from(PRESETS), st.integers(1, 3))
def test_fuzz_emulator_never_crashes(cmds, name, reps):
    lines = [op.format(c=c % 2, b=b, r=r, x=x) for op, c, b, r, x in cmds]
    text = f"loop i {reps} {{\n" + "\n".join("  " + l for l in lines) + "\n}\n" if lines else ""
    prog = parse(text, "fz.pim")
    emu = PimEmulator(load_hw(name))
    emu.set_input(list(range(64 * 16)))
    try:
        res = emu.run(prog)
    except SpecccError as err:
        assert str(err).startswith("fz.pim:")
        return
    assert res.cycles >= 0 and res.energy_total_pj >= 0


def test_sync_waits_for_every_channel_and_energy_adds_up():
    hw = load_hw("aim-gddr6")
    t = hw.pim.timing
    text = ("ACT ch=0 bank=0 row=0\nRD ch=0 bank=0 row=0 col=0 dst=0\nSYNC\n"
            "ACT ch=5 bank=0 row=0\n")
    res = time_program(parse(text), hw, record=True)
    rd, sync, act = res.trace[1], res.trace[2], res.trace[3]
    assert sync.op == "SYNC" and sync.cycle == rd.cycle + t.CL + t.tBL
    assert act.cycle == sync.cycle
    e, p = hw.energy, hw.pim
    assert res.energy_pj["activate"] == pytest.approx(2 * e.act_pj)
    assert res.energy_pj["external_io"] == pytest.approx(p.burst_bytes * 8 * e.external_pj_per_bit)
    assert res.bytes_external == p.burst_bytes and res.bytes_internal == 0


def test_mac_ab_energy_and_utilization():
    hw = load_hw("hbm3-pim")
    text = "ACT.ab ch=2 pc=1 row=0\nloop c 32 {\n  MAC.ab ch=2 pc=1 row=0 col=c slot=c acc=0\n}\n"
    res = time_program(parse(text), hw)
    p, e = hw.pim, hw.energy
    assert res.lane_macs == 32 * p.pus_per_pc * p.pu.lanes
    assert res.bytes_internal == 32 * p.pus_per_pc * p.burst_bytes
    assert res.energy_pj["mac"] == pytest.approx(res.lane_macs * e.mac_pj)
    assert res.energy_pj["internal_read"] == pytest.approx(res.bytes_internal * 8 * 0.44)
    assert res.channel_utilization[2] > 0 and res.channel_utilization[0] == 0


@pytest.mark.parametrize("name", PRESETS)
def test_acceleration_is_exact_on_a_multi_layer_program(name):
    """A small decode-step-like program: a layer loop of GEMVs with SYNCs and rows and
    destinations affine in the layer, as the benchmark's LLaMA program is built."""
    from speccc.targets.pim.gemv import gemv_body
    from speccc.targets.pim.listing import Affine, Program, loop
    hw = load_hw(name)
    base, plans = 0, []
    for M, K in [(512, 512), (512, 512), (1024, 512), (512, 1024)]:
        plans.append(plan_matrix(hw, M, K, base=base, channels=(0, 1)))
        base += plans[-1].rows_used
    body, dst = [], 0
    for pl in plans:
        body += gemv_body(hw, pl, dst=Affine.of("l") * 10000 + dst,
                          row_offset=Affine.of("l") * base)
        dst += pl.outputs
    prog = Program((loop("l", 3, body),), name)
    fast, slow = both(prog, hw)
    same(fast, slow)


@pytest.mark.parametrize("name", PRESETS)
def test_long_idle_gaps_refresh_exactly_and_fast(name):
    hw = load_hw(name)
    gap = 57 * hw.pim.timing.tREFI + 123
    text = (f"ACT.ab ch=0 row=3\nACT ch=1 bank=1 row=2\n@{gap} RD ch=0 bank=0 row=3 col=0 dst=0\n"
            f"SYNC\nRD ch=1 bank=1 row=2 col=0 dst=0\n")
    fast, slow = both(parse(text), hw)
    same(fast, slow)
    assert fast.refreshes >= 2 * 57 * hw.pim.pseudo_channels
    huge = time_program(parse("ACT ch=0 bank=0 row=0\n@1000000000000 PRE ch=0 bank=0\n"), hw)
    assert huge.cycles >= 10 ** 12 and huge.refreshes >= 10 ** 12 // hw.pim.timing.tREFI - 2
