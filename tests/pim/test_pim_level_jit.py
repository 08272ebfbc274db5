"""The compiled accumulator steps (targets/pim/level_jit.py, numba: the `[fast]` extra)
against the per-command oracle: every codegen case of test_pim_vectorised.py on every
preset and precision, and the hand-written listings with AF / EW / RDMAC between MACs,
give the same bits (skipped when numba is not installed); and the numpy level loop,
which runs without numba, on the same cases."""
from __future__ import annotations

import numpy as np
import pytest
from test_pim_vectorised import CASES, EVERY_EFFECT, _bits, _both_engines, _f32, _run

from speccc.hw import load_hw, preset_names
from speccc.targets.pim import level_jit
from speccc.targets.pim.functional import round_to
from speccc.targets.pim.listing import parse

needs_numba = pytest.mark.skipif(not level_jit.available(), reason="numba not installed")


@pytest.fixture
def always_compiled(monkeypatch):
    """Every plan, however small, takes the compiled path (and the test checks it did)."""
    monkeypatch.setattr(level_jit, "MIN_VALUES", 0)
    monkeypatch.setattr(level_jit, "FIRST_RUN_LANE_VALUES", 0)
    calls = []
    real = level_jit.CompiledSteps.run

    def counted(self, *args):
        calls.append(1)
        return real(self, *args)
    monkeypatch.setattr(level_jit.CompiledSteps, "run", counted)
    return calls


@needs_numba
@pytest.mark.parametrize("mode", ["fp32", "device"])
@pytest.mark.parametrize("hw_name", preset_names())
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_equals_per_command(case, hw_name, mode, always_compiled):
    hw = load_hw(hw_name)
    name, ins, attrs = CASES[case](hw)
    ref_emu, ref = _run("command", hw, name, ins, attrs, mode)
    emu, got = _run("loop", hw, name, ins, attrs, mode)
    assert always_compiled, "the compiled path was not taken"
    assert [_bits(a) for a in got] == [_bits(a) for a in ref]
    assert sorted(emu.outputs) == sorted(ref_emu.outputs)
    assert all(_bits(emu.outputs[k]) == _bits(ref_emu.outputs[k]) for k in ref_emu.outputs)
    assert _bits(emu.state.acc) == _bits(ref_emu.state.acc)
    assert _bits(emu.state.gb) == _bits(ref_emu.state.gb)


@needs_numba
@pytest.mark.parametrize("mode", ["fp32", "device"])
@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6-x4", "hbm3-pim-x8"])
def test_every_effect_compiled(hw_name, mode, always_compiled):
    hw = load_hw(hw_name)
    prog = parse(EVERY_EFFECT)
    image = {(0, b, 2): _f32(hw.pim.columns, hw.pim.pu.lanes) for b in range(4)}
    stream = _f32(16 * hw.pim.pu.lanes)
    a, b = _both_engines(hw, mode, prog, image, stream, runs=2)
    assert always_compiled
    assert all(_bits(a.outputs[k]) == _bits(b.outputs[k]) for k in a.outputs)
    assert _bits(a.state.acc) == _bits(b.state.acc)


def _round_compiled(dtype: str, x: np.ndarray) -> np.ndarray:
    """Each x rounded by the compiled loop: EWMUL of x into a register holding 1 (exact,
    -0 and NaN included)."""
    n = len(x)
    vals = np.ones((n + 1, 1), np.float32)
    kind = np.full(n + 1, level_jit.EWMUL, np.int64)
    level_jit.run_span(vals, 1, n + 1, kind, np.zeros(n + 1, np.int64),
                       np.arange(-1, n, dtype=np.int64), np.zeros((0, 16), np.float32),
                       np.zeros(0, np.int64), np.zeros((0, 16), np.float32),
                       np.zeros(0, np.int64),
                       x.reshape(-1, 1), False, dtype)
    return vals[1:, 0]


@needs_numba
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_rounding_matches_numpy_bits(dtype):
    """Edges of every fp16 / bf16 range (ties, subnormals, overflow, inf, NaN, -0) and
    random bit patterns round as functional.round_to does, bit for bit."""
    rng = np.random.default_rng(3)
    edges = np.array([0, 0x80000000, 0x33000000, 0x33000001, 0x337FFFFF, 0x38800000,
                      0x387FFFFF, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001,
                      0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001,
                      0xFFC12345, 0x3F801000, 0x3F803000, 0x3F808000, 0x3F818000],
                     np.uint32)
    bits = np.concatenate([edges, rng.integers(0, 2**32, 200_000, dtype=np.uint64)
                           .astype(np.uint32)])
    # and numbers near 1 and in the subnormal fp16 range, where ties are common
    near = (rng.integers(-2**12, 2**12, 50_000) + np.uint32(0x3F800000)).astype(np.uint32)
    tiny = rng.integers(0, 0x38800000, 50_000).astype(np.uint32)
    x = np.concatenate([bits, near, tiny]).view(np.float32)
    with np.errstate(all="ignore"):
        want = round_to(dtype, x)
        got = _round_compiled(dtype, x)
        read = level_jit.CompiledSteps.read_out(x.reshape(-1, 1), np.arange(len(x)), dtype)
    nan = np.isnan(want)
    for bits in (got, read[:, 0]):
        assert np.array_equal(np.isnan(bits), nan)
        assert np.array_equal(bits[~nan].view(np.uint32), want[~nan].view(np.uint32))


@pytest.mark.parametrize("mode", ["fp32", "device"])
@pytest.mark.parametrize("hw_name", preset_names())
@pytest.mark.parametrize("case", ["gemv-3-rows", "gated-mlp", "attention-verify-gqa"])
def test_numpy_levels_equal_per_command(case, hw_name, mode, monkeypatch):
    """Without numba (or below MIN_VALUES) the numpy level loop runs: the same bits."""
    monkeypatch.setattr(level_jit, "MIN_VALUES", 10**12)
    monkeypatch.setattr(level_jit.CompiledSteps, "run", None)     # never entered
    hw = load_hw(hw_name)
    name, ins, attrs = CASES[case](hw)
    ref_emu, ref = _run("command", hw, name, ins, attrs, mode)
    emu, got = _run("loop", hw, name, ins, attrs, mode)
    assert [_bits(a) for a in got] == [_bits(a) for a in ref]
    assert _bits(emu.state.acc) == _bits(ref_emu.state.acc)


@needs_numba
def test_first_run_of_a_small_plan_stays_in_numpy(monkeypatch):
    """A one-shot run does not load numba for a small plan; the second run compiles."""
    monkeypatch.setattr(level_jit, "MIN_VALUES", 0)
    monkeypatch.setattr(level_jit, "_jit", [])          # as in a fresh process
    hw = load_hw("hbm-pim")
    name, ins, attrs = CASES["gemv"](hw)
    from speccc.targets.pim.codegen import kernel_for
    from speccc.targets.pim.emulator import PimEmulator
    k = kernel_for(name, attrs, hw, [i.shape for i in ins])
    emu = PimEmulator(hw, timing=False)
    first = k.run(emu, ins)
    assert level_jit._jit == []
    second = k.run(emu, ins, load=False)
    assert level_jit._jit and level_jit._jit[0] is not None
    assert [_bits(a) for a in first] == [_bits(a) for a in second]


@needs_numba
@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6"])
def test_exec_session_compiled_runs_equal_the_numpy_first_run(hw_name, tmp_path):
    """A placed zoo graph run as a session (bench_emulator's `prepared`): later runs go
    through the compiled loop (the first one too once numba is loaded, else numpy);
    every output has the same bits on every run."""
    from speccc import driver, emulation, zoo
    from speccc.hw import load_hw as load
    from speccc.ir.interpreter import Plan, bind_inputs
    from speccc.passmanager import PassManager
    path = tmp_path / "m.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), path)
    feeds = zoo.example_inputs("llama-tiny", "decode", 5, 3)
    pm = PassManager.parse(driver.CANONICAL_PIPELINE, verify_each=False)
    module = driver.load_any(path)
    driver._add_place(pm, hw_name, bind_inputs(next(iter(module)), feeds, {}), 0)
    pm.run(module)
    graph = next(iter(module))
    plan = Plan(graph, emulation.emulator_overrides(graph, load(hw_name),
                                                 driver.PRECISIONS["fp16"]))
    calls = []
    real = level_jit.CompiledSteps.run

    def counted(self, *args):
        calls.append(1)
        return real(self, *args)
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(level_jit.CompiledSteps, "run", counted)
        for _ in range(3):
            runs.append({k: _bits(v) for k, v in plan.run(feeds).items()})
            if len(runs) == 1:
                first_calls = len(calls)
    assert calls and len(calls) > first_calls, "the compiled loop never ran"
    assert runs[0] == runs[1] == runs[2]
