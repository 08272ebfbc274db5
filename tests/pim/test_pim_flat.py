"""Compiled flat timing (targets/pim/flat.py, numba) against the pure-Python scheduler,
its oracle: every timing value and the whole channel state equal, the same errors."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_pim_emulator import loop_program

from speccc.errors import SpecccError
from speccc.hw import load_hw, preset_names
from speccc.targets.pim.emulator import summarize, time_program
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import parse
from speccc.targets.pim.scheduler import Scheduler

pytest.importorskip("numba")


def _both(prog, hw):
    out = []
    for compiled in (False, True):
        sched = Scheduler(hw, accelerate=False, compiled=compiled)
        sched.run(prog)
        out.append((summarize(hw, sched).to_dict(), [chan.key() for chan in sched.chans]))
    return out


@pytest.mark.parametrize("hw_name", preset_names())
@pytest.mark.parametrize("M,K,channels", [(1024, 2048, (0,)), (300, 700, None), (640, 5000, (1, 2))])
def test_compiled_equals_python_on_gemv(hw_name, M, K, channels):
    hw = load_hw(hw_name)
    python, compiled = _both(gemv_program(hw, plan_matrix(hw, M, K, channels=channels)), hw)
    assert python[0]["commands"] > 1000
    assert compiled == python


MIXED = """
@5 ACT ch=0 bank=1 row=2
WR ch=0 bank=1 row=2 col=0 src=0
@400 RD ch=0 bank=1 row=2 col=0 dst=0
PRE ch=0 bank=1
REF ch=0
loop r 200 {
  ACT.ab ch=1 row=r
  loop c 8 {
    WRGB ch=1 slot=c src=c
    MAC.ab ch=1 row=r col=c slot=c acc=0
  }
  AF ch=1 acc=0 fn=relu
  RDMAC ch=1 acc=0 dst=r
  PRE.ab ch=1
  SYNC
}
"""


@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6", "hbm3-pim"])
def test_compiled_hands_back_sync_refresh_ref_and_stamps(hw_name):
    hw = load_hw(hw_name)
    python, compiled = _both(parse(MIXED), hw)
    assert python[0]["refreshes"] > 2
    assert compiled == python


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loop_program(), st.sampled_from(["hbm-pim", "aim-gddr6", "hbm3-pim"]))
def test_compiled_equals_python_on_random_loops(text, name):
    hw = load_hw(name)
    prog = parse(text, "bad.pim")
    errors = []
    for compiled in (False, True):
        try:      # as the emulator runs it: operand ranges first, then the scheduler
            time_program(prog, hw, accelerate=False, compiled=compiled)
            errors.append(None)
        except SpecccError as err:
            errors.append(str(err))
    assert errors[0] == errors[1]
    if errors[0] is None:
        python, compiled = _both(prog, hw)
        assert compiled == python
