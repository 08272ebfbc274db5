"""A listing charged as one phase of a step (targets/pim/phase.py): refresh debt across
phase boundaries, mode switches once per PIM listing, RDMAC latency per standard."""
import pytest

from speccc.hw import load_hw
from speccc.targets.pim.emulator import time_program
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import Program, cmd, format_program
from speccc.targets.pim.phase import mode_switch_cycles, time_phase
from speccc.targets.pim.timing import completion_latency

PRESETS = ("aim-gddr6", "hbm-pim", "hbm3-pim")


@pytest.mark.parametrize("name", PRESETS)
def test_a_step_of_short_phases_pays_refresh_at_the_average_rate(name):
    hw = load_hw(name)
    t = hw.pim.timing
    prog = gemv_program(hw, plan_matrix(hw, 1024, 1024))
    raw = time_program(prog, hw)
    assert raw.cycles < t.tREFI and raw.refreshes == 0      # alone it never meets a REF
    switch = sum(mode_switch_cycles(hw).values())
    steps = [time_phase(prog, hw) for _ in range(20)]       # a step of 20 such phases
    total = sum(r.cycles for r in steps)
    work = 20 * (raw.cycles + switch)
    # about duration x tRFC / tREFI of refresh, where the listings alone saw none
    assert total - work == pytest.approx(20 * raw.cycles * t.tRFC / (t.tREFI - t.tRFC), abs=20)
    refs = sum(r.refreshes for r in steps)
    periodic = 20 * raw.cycles / (t.tREFI - t.tRFC) * raw.active_channels * hw.pim.pseudo_channels
    assert refs == pytest.approx(periodic, abs=20 * 0.5)     # counts round per phase
    energy = sum(r.energy_pj["refresh"] for r in steps)      # energy takes the exact share
    assert energy == pytest.approx(periodic * hw.energy.ref_pj, rel=0.01)


def test_a_phase_that_met_its_refreshes_pays_little_more():
    hw = load_hw("hbm-pim")                                  # 4096x4096 spans ~10 tREFI
    prog = gemv_program(hw, plan_matrix(hw, 4096, 4096))
    raw, ph = time_program(prog, hw), time_phase(prog, hw)
    assert raw.refreshes > 0
    extra = ph.cycles - raw.cycles - sum(mode_switch_cycles(hw).values())
    assert 0 <= extra <= hw.pim.timing.tRFC                 # at most one missing REF's time


@pytest.mark.parametrize("name", PRESETS)
def test_mode_switch_is_charged_once_per_pim_listing(name):
    hw = load_hw(name)
    sw = mode_switch_cycles(hw)
    assert "enter" in sw and "exit" in sw and all(v > 0 for v in sw.values())
    assert ("crf" in sw) == (name == "hbm-pim")              # HBM-PIM's microkernel register file
    one = gemv_program(hw, plan_matrix(hw, 256, 256))
    two = Program(one.body[:-1] * 2 + one.body[-1:], one.hw, "two")   # two GEMVs, one listing
    for prog in (one, two):
        raw, ph = time_program(prog, hw), time_phase(prog, hw)
        assert raw.refreshes == 0 and raw.cycles < hw.pim.timing.tREFI
        refresh = round(raw.cycles * hw.pim.timing.tRFC
                        / (hw.pim.timing.tREFI - hw.pim.timing.tRFC))
        assert ph.cycles - raw.cycles - refresh == sum(sw.values())
    plain = Program((cmd("ACT", ch=0, bank=0, row=0), cmd("RD", ch=0, bank=0, row=0, col=0, dst=0),
                     cmd("PRE", ch=0, bank=0), cmd("SYNC")), hw.name, "plain")
    raw, ph = time_program(plain, hw), time_phase(plain, hw)
    assert ph.cycles - raw.cycles < sum(sw.values())         # no PIM command: no switch


# per pseudo-channel: (row activations, host-written bursts) of enter + crf + exit (the
# Overhead table's counts from PIMSimulator's sequences; AiM's is a delay, EST 0)
SWITCH_WORK = {"aim-gddr6": (0, 0), "hbm-pim": (4 + 1 + 2, 5 + 4 + 3), "hbm3-pim": (4 + 2, 5 + 3)}


@pytest.mark.parametrize("name", PRESETS)
def test_mode_switch_energy_is_charged_once_per_pim_listing(name):
    """The switch's command sequence costs its activations and written bursts on every
    pseudo-channel the listing uses, once per listing; a listing without PIM-mode commands
    pays nothing, and the rest of the energy is the timed listing's own."""
    hw = load_hw(name)
    e, p = hw.energy, hw.pim
    acts, bursts = SWITCH_WORK[name]
    per_pc = acts * e.act_pj + bursts * 8 * p.burst_bytes * e.external_pj_per_bit
    one = gemv_program(hw, plan_matrix(hw, 256, 256))
    two = Program(one.body[:-1] * 2 + one.body[-1:], one.hw, "two")
    for prog in (one, two):
        raw, ph = time_program(prog, hw), time_phase(prog, hw)
        want = per_pc * raw.active_channels * p.pseudo_channels
        assert ph.energy_pj["mode_switch"] == pytest.approx(want)
        assert (want > 0) == (name != "aim-gddr6")
        rest = {k: v for k, v in ph.energy_pj.items() if k not in ("mode_switch", "refresh")}
        assert rest == {k: v for k, v in raw.energy_pj.items() if k != "refresh"}
        assert ph.energy_total_pj == pytest.approx(
            raw.energy_total_pj + want + ph.energy_pj["refresh"] - raw.energy_pj["refresh"])
    plain = Program((cmd("ACT", ch=0, bank=0, row=0), cmd("RD", ch=0, bank=0, row=0, col=0, dst=0),
                     cmd("PRE", ch=0, bank=0), cmd("SYNC")), hw.name, "plain")
    assert time_phase(plain, hw).energy_pj["mode_switch"] == 0.0


@pytest.mark.parametrize("name,latency", [("aim-gddr6", "tRDMAC"), ("hbm-pim", "CL+tRDMAC"),
                                          ("hbm3-pim", "CL+tRDMAC")])
def test_rdmac_latency_per_standard(name, latency):
    hw = load_hw(name)
    t = hw.pim.timing
    tRDMAC = hw.pim.rdmac_bursts * t.tBL
    want = tRDMAC if latency == "tRDMAC" else t.CL + tRDMAC
    assert completion_latency(hw)["RDMAC"] == want
    prog = Program((cmd("RDMAC", ch=0, acc=0, dst=0), cmd("SYNC")), hw.name, "rd")
    assert time_program(prog, hw).cycles == want
    if name == "aim-gddr6":
        assert want == 2                                     # aim_simulator: nCLREG 0 + nBL


@pytest.mark.parametrize("name", PRESETS)
def test_listings_and_phase_figures_are_deterministic(name):
    hw = load_hw(name)
    a, b = (gemv_program(hw, plan_matrix(hw, 512, 768)) for _ in range(2))
    assert format_program(a) == format_program(b)
    ra, rb = time_phase(a, hw), time_phase(b, hw)
    assert (ra.cycles, ra.refreshes, ra.energy_pj) == (rb.cycles, rb.refreshes, rb.energy_pj)
