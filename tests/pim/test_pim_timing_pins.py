"""Pinned timing figures: the GEMV of benchmarks/bench_pim_gemv.py on every preset.

These are the numbers the timing engine gave before the rule tables were split per DRAM
standard (targets/pim/standards/), recorded by benchmarks/pim_fingerprint.py. A change
to a standard's table, the scheduler or the loop accelerator that moves one of them
changes what every report says; update a pin only with the reason in the commit.
The full fingerprint (every report.json number and listing hash of llama-tiny and
LLaMA-2-7B) is `python benchmarks/pim_fingerprint.py -o F --compare OLD`.
"""
import pytest

from speccc.hw import load_hw
from speccc.targets.pim.emulator import time_program
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix

# cycles, commands, refreshes, activated banks, internal / external bytes, energy pJ
PINS = {
    "aim-gddr6": (7445, 78912, 0, 16896, 33554432, 360448, 177725092),
    "hbm-pim": (37480, 156880, 144, 35072, 33554432, 659456, 193040410),
    "hbm3-pim": (8083, 45216, 32, 34816, 33554432, 425984, 173926564),
}


@pytest.mark.parametrize("name", sorted(PINS))
def test_gemv_4096x4096_timing_is_pinned(name):
    hw = load_hw(name)
    r = time_program(gemv_program(hw, plan_matrix(hw, 4096, 4096)), hw)
    got = (r.cycles, r.commands, r.refreshes, r.activations, r.bytes_internal,
           r.bytes_external, round(r.energy_total_pj))
    assert got == PINS[name]


# The same GEMV charged as one phase of a step (targets/pim/phase.py): the listing's own
# figures above plus the refresh it did not see at the average rate (tRFC per tREFI) and
# the standard's mode switches (aim-gddr6: 7445 + 102 refresh + 64 CENT switch; hbm-pim:
# 37480 + 235 + 180 PIMSimulator switch and CRF; hbm3-pim: 8083 + 297 + 158). Added with
# the phase charges (refresh debt, mode switches); cycles, REFs, energy pJ. Energy
# includes the mode switches' own (phase.mode_switch_energy_pj): hbm-pim +365,852 pJ
# (16 pseudo-channels x 22,866 pJ), hbm3-pim +401,076 (32 x 12,534), aim-gddr6 none.
PHASE_PINS = {
    "aim-gddr6": (7611, 15, 179510588),
    "hbm-pim": (37895, 155, 193715570),
    "hbm3-pim": (8538, 53, 175532483),
}


@pytest.mark.parametrize("name", sorted(PHASE_PINS))
def test_gemv_4096x4096_phase_timing_is_pinned(name):
    from speccc.targets.pim.phase import time_phase
    hw = load_hw(name)
    r = time_phase(gemv_program(hw, plan_matrix(hw, 4096, 4096)), hw)
    assert (r.cycles, r.refreshes, round(r.energy_total_pj)) == PHASE_PINS[name]
