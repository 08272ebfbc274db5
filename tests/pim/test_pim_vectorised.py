"""The vectorised functional engine (targets/pim/vectorised.py) against the per-command
oracle: the same codegen listings (GEMV, gated MLP, attention, elementwise; multi-token
MACN.ab on the presets that buffer several tokens) on every preset and precision give
the same bits in every output, accumulator, GB slot and bank row."""
from __future__ import annotations

import numpy as np
import pytest
from test_codegen import attention_case, placed

from speccc.errors import SpecccError
from speccc.hw import load_hw, preset_names
from speccc.targets.pim.codegen import ELEMENTWISE, kernel_for
from speccc.targets.pim.emulator import PimEmulator
from speccc.targets.pim.listing import parse

rng = np.random.default_rng(7)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _linear(hw, rows):
    ins = [_f32(1, rows, 70), _f32(70, 100), _f32(100)]
    return "linear", ins, placed("linear", {}, hw, [i.shape for i in ins])


def _gated_mlp(hw):
    ins = [_f32(1, 2, 48), _f32(48, 80), _f32(48, 80), _f32(80, 40)]
    return "gated_mlp", ins, placed("gated_mlp", {"activation": "silu"}, hw,
                                    [i.shape for i in ins])


def _attention(hw, H, G, T, S, D):
    ins, attrs, _ = attention_case(H, G, T, S, D, causal=True, scale=0.25)
    return "attention", ins, placed("attention", attrs, hw, [i.shape for i in ins],
                                    max_context=40)


def _elementwise(hw, op):
    x = _f32(1, 2, 350)
    ins = [x] + ([_f32(350)] if op in ("add", "mul") else [x * 0.5] if op == "swiglu" else [])
    return op, ins, {"approximate": "tanh"} if op == "gelu" else {}


CASES = {
    "gemv": lambda hw: _linear(hw, 1),
    "gemv-3-rows": lambda hw: _linear(hw, 3),
    "gated-mlp": _gated_mlp,
    "attention-decode": lambda hw: _attention(hw, 4, 4, 1, 9, 16),
    "attention-verify-gqa": lambda hw: _attention(hw, 6, 2, 5, 12, 32),
    **{f"ew-{op}": (lambda hw, op=op: _elementwise(hw, op)) for op in sorted(ELEMENTWISE)},
}


def _bits(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, np.float32)).tobytes()


def _both_engines(hw, mode, prog, image, stream, runs: int):
    """(command-engine emulator, loop-engine emulator), each after loading `image` and
    `stream` and running `prog` `runs` times."""
    emus = []
    for engine in ("command", "loop"):
        emu = PimEmulator(hw, mode=mode, engine=engine, timing=False)
        emu.load_image(image)
        emu.set_input(stream)
        for _ in range(runs):
            emu.run(prog)
        emus.append(emu)
    return emus


def _run(engine, hw, name, ins, attrs, mode):
    k = kernel_for(name, attrs, hw, [i.shape for i in ins])
    emu = PimEmulator(hw, mode=mode, engine=engine, timing=False)
    outs = k.run(emu, ins)
    outs += k.run(emu, ins, load=False)    # a second run: state carried over, caches hit
    return emu, outs


@pytest.mark.parametrize("mode", ["fp32", "device"])
@pytest.mark.parametrize("hw_name", preset_names())
@pytest.mark.parametrize("case", sorted(CASES))
def test_vectorised_equals_per_command(case, hw_name, mode):
    hw = load_hw(hw_name)
    name, ins, attrs = CASES[case](hw)
    ref_emu, ref = _run("command", hw, name, ins, attrs, mode)
    emu, got = _run("loop", hw, name, ins, attrs, mode)
    assert [_bits(a) for a in got] == [_bits(a) for a in ref]
    assert sorted(emu.outputs) == sorted(ref_emu.outputs)
    assert all(_bits(emu.outputs[k]) == _bits(ref_emu.outputs[k]) for k in ref_emu.outputs)
    assert _bits(emu.state.acc) == _bits(ref_emu.state.acc)
    assert _bits(emu.state.gb) == _bits(ref_emu.state.gb)
    assert emu.state.rows.keys() == ref_emu.state.rows.keys()
    assert all(_bits(emu.state.rows[k]) == _bits(v) for k, v in ref_emu.state.rows.items())


LOOP_CARRIED = """
loop t 3 {
  loop g 2 {
    MAC.ab ch=0 row=0 col=g slot=g acc=0
  }
  RDMAC ch=0 acc=0 dst=t
  loop g 2 {
    WRGB ch=0 slot=g src=2+2*t+g
  }
}
loop i 4 {
  WRGB ch=0 slot=0 src=i
}
"""


@pytest.mark.parametrize("mode", ["fp32", "device"])
def test_loop_carried_dependences_split(mode):
    """A loop whose later commands feed earlier ones (RDMAC clears what the next MACs add
    to; WRGB refills slots they read) and repeated writes to one slot."""
    hw = load_hw("hbm-pim")
    prog = parse(LOOP_CARRIED)
    image = {(0, b, 0): _f32(hw.pim.columns, hw.pim.pu.lanes)
             for b in range(hw.pim.banks_per_channel)}
    stream = _f32(12 * hw.pim.pu.lanes)
    a, b = _both_engines(hw, mode, prog, image, stream, runs=1)
    assert sorted(a.outputs) == sorted(b.outputs) == [0, 1, 2]
    assert all(_bits(a.outputs[k]) == _bits(b.outputs[k]) for k in a.outputs)
    assert _bits(a.state.gb) == _bits(b.state.gb)


def test_missing_input_burst_is_located_the_same():
    hw = load_hw("hbm-pim")
    prog = parse("loop i 4 {\n  WRGB ch=0 slot=i src=i\n}\n", name="x.pim")
    msgs = []
    for engine in ("command", "loop"):
        emu = PimEmulator(hw, engine=engine, timing=False)
        emu.set_input(np.zeros(2 * hw.pim.pu.lanes, np.float32))
        with pytest.raises(SpecccError) as err:
            emu.run(prog)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and "burst 2" in msgs[0] and "x.pim:2:" in msgs[0]


def test_unknown_engine():
    with pytest.raises(SpecccError, match="functional engine"):
        PimEmulator(load_hw("hbm-pim"), engine="fast")


EVERY_EFFECT = """
loop i 3 {
  WR ch=0 bank=1 row=2 col=i src=i
  WR ch=0 bank=1 row=2 col=i src=3+i
}
WRGB ch=0 slot=0 src=6
loop j 2 {
  loop i 3 {
    MAC ch=0 bank=1 row=2 col=i slot=0 acc=j
  }
  MAC.ab ch=0 row=2 col=j slot=0 acc=j
  AF ch=0 acc=j fn=silu
  RD ch=0 bank=1 row=2 col=j dst=j
  WR ch=0 bank=1 row=2 col=1+j src=7+j
  RDMAC ch=0 acc=j dst=1+j
  MAC.ab ch=0 row=2 col=j slot=0 acc=j
}
EWMUL ch=0 acc=0 slot=0
EWADD ch=0 acc=1 slot=0
AF ch=0 acc=1 fn=gelu
RDMAC ch=0 acc=1 dst=5
RD ch=0 bank=3 row=9 col=0 dst=6
"""


@pytest.mark.parametrize("mode", ["fp32", "device"])
@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6-x4", "hbm3-pim-x8"])
def test_every_effect_in_program_order(hw_name, mode):
    """WR over WR, MACs reading words this listing wrote, RD and RDMAC of one dst (the
    later wins), AF / EW on registers a loop carries, a read of a never-written row."""
    hw = load_hw(hw_name)
    prog = parse(EVERY_EFFECT)
    image = {(0, b, 2): _f32(hw.pim.columns, hw.pim.pu.lanes) for b in range(4)}
    stream = _f32(16 * hw.pim.pu.lanes)
    # run twice: the second starts from the state the first left
    a, b = _both_engines(hw, mode, prog, image, stream, runs=2)
    assert sorted(a.outputs) == sorted(b.outputs) == [0, 1, 2, 5, 6]
    assert all(_bits(a.outputs[k]) == _bits(b.outputs[k]) for k in a.outputs)
    assert np.asarray(a.outputs[1]).shape == np.asarray(b.outputs[1]).shape   # RDMAC won
    assert _bits(a.state.acc) == _bits(b.state.acc)
    assert _bits(a.state.gb) == _bits(b.state.gb)
    assert a.state.rows.keys() == b.state.rows.keys()
    assert all(_bits(a.state.rows[k]) == _bits(v) for k, v in b.state.rows.items())


@pytest.mark.parametrize("hw_name", [n for n in preset_names() if load_hw(n).pim.token_slots > 1])
def test_multi_token_listings_run_vectorised(hw_name, monkeypatch):
    """MACN.ab listings (several tokens per row visit) no longer fall back to stepping
    through commands: the per-command path is never entered."""
    from speccc.targets.pim.functional import FunctionalState
    hw = load_hw(hw_name)
    name, ins, attrs = _linear(hw, 3)
    k = kernel_for(name, attrs, hw, [i.shape for i in ins])
    assert "MACN.ab" in str(k.phases())
    ref = k.run(PimEmulator(hw, engine="command", timing=False), ins)

    def refuse(*args):
        raise AssertionError("per-command path entered")
    monkeypatch.setattr(FunctionalState, "_exec", refuse)
    got = k.run(PimEmulator(hw, engine="loop", timing=False), ins)
    assert [_bits(a) for a in got] == [_bits(a) for a in ref]


@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6"])
def test_rewritten_weights_are_read_again(hw_name):
    """The vectorised engine keeps gathered weight words between runs; a new image over
    the same rows must be seen (as the per-command engine sees it)."""
    hw = load_hw(hw_name)
    name, ins, attrs = _linear(hw, 1)
    k = kernel_for(name, attrs, hw, [i.shape for i in ins])
    outs = {}
    for engine in ("command", "loop"):
        emu = PimEmulator(hw, engine=engine, timing=False)
        first = k.run(emu, ins)[0]
        second = k.run(emu, [ins[0], ins[1] * 2, ins[2]], load=True)[0]
        outs[engine] = (first, second)
    assert not np.array_equal(outs["loop"][0], outs["loop"][1])
    assert [_bits(a) for a in outs["loop"]] == [_bits(a) for a in outs["command"]]
