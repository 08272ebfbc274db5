"""Plan's prepared path (op `prepare` hooks: compiled norms, ...) gives the plain per-op
path's results bit for bit: on the zoo models as the benchmark runs them (canonical
pipeline, prefill and decode) and on the norm kernels over row lengths around numpy's
pairwise-summation blocks."""
from __future__ import annotations

import numpy as np
import pytest

from speccc import driver, zoo
from speccc.ir.interpreter import Plan
from speccc.ir.opdefs import lookup
from speccc.ir.ops import compiled
from speccc.passmanager import PassManager
from speccc.ir.types import DType, TensorType

ZOO = [(name, mode, t, p) for name in ("llama-tiny", "gpt2-tiny", "opt-tiny")
       for mode, t, p in (("prefill", 8, 0), ("decode", 1, 4), ("decode", 5, 3))]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def canonical_graph(tmp_path, name: str, mode: str):
    path = tmp_path / f"{name}-{mode}.onnx"
    zoo.save(zoo.build(name, mode=mode), path)
    module = driver.load_any(path)
    PassManager.parse(driver.CANONICAL_PIPELINE, verify_each=False).run(module)
    return next(iter(module))


@pytest.mark.parametrize("name,mode,T,P", ZOO, ids=[f"{n}-{m}-T{t}-P{p}" for n, m, t, p in ZOO])
def test_prepared_plan_matches_plain_on_zoo(tmp_path, name, mode, T, P):
    g = canonical_graph(tmp_path, name, mode)
    plain, prepared = Plan(g, prepare=False), Plan(g)
    for seed in (0, 1):
        feeds = zoo.example_inputs(name, mode, T, P, seed)
        want = plain.run(feeds)
        for _ in range(3):            # the first run checks types; later runs are prepared
            got = prepared.run(feeds)
            assert sorted(got) == sorted(want)
            for k in want:
                assert same_bits(got[k], want[k]), (name, mode, k)
    # the comparison is not vacuous: the runs after the first were straight-line code,
    # and (with numba) some step ran a prepared form
    from speccc.ir.straightline import StraightLineProgram
    assert all(type(hit[2]) is StraightLineProgram for hit in prepared._bound.values())
    if compiled.kernels() is not None:
        plain_refs = [step[1] for step in prepared.steps]
        assert any(r is not p for r, p in zip(prepared._program_refs(), plain_refs))


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny"])
def test_prepared_plan_without_numba_matches_plain(tmp_path, monkeypatch, name):
    """As on a machine without the `[fast]` extra: hooks fall back to numpy (linear's
    np.dot stays), the straight-line program still runs."""
    monkeypatch.setattr(compiled, "kernels", lambda: None)
    g = canonical_graph(tmp_path, name, "decode")
    feeds = zoo.example_inputs(name, "decode", 5, 3)
    want = Plan(g, prepare=False).run(feeds)
    prepared = Plan(g)
    for _ in range(3):
        got = prepared.run(feeds)
        assert all(same_bits(got[k], want[k]) for k in want)
    names = {step[0].name for step, ref in zip(prepared.steps, prepared._program_refs())
             if ref is not step[1]}
    assert names == {"linear"}


def prepared_and_ref(op_name: str, types: list, attrs: dict):
    od = lookup(op_name)
    attrs = od.full_attrs(attrs)
    return od.ref, od.extra["prepare"](attrs, [None] * len(types), types), attrs


def assert_same_as_ref(ref, prepared, attrs, ins, what):
    with np.errstate(all="ignore"):
        want = ref(ins, attrs)[0]
        got = prepared(ins, attrs)[0]
    assert same_bits(got, want), what


def spread(rng, shape) -> np.ndarray:
    """f32 values over many magnitudes, some rows offset far from 0."""
    scale = 10.0 ** rng.uniform(-3, 3)
    return (rng.standard_normal(shape) * scale + rng.standard_normal() * scale).astype(np.float32)


needs_numba = pytest.mark.skipif(compiled.kernels() is None,
                                 reason="numba not installed: the numpy references only")


@needs_numba
@pytest.mark.parametrize("op_name,n_params", [("layernorm", 2), ("layernorm", 1),
                                              ("rmsnorm", 1)])
@pytest.mark.parametrize("n", [1, 5, 8, 9, 16, 63, 64, 100, 127, 128])
def test_compiled_norm_bits(op_name, n_params, n):
    types = [TensorType((3, 4, n), DType.f32)] + [TensorType((n,), DType.f32)] * n_params
    ref, prepared, attrs = prepared_and_ref(op_name, types, {"eps": 1e-5})
    assert prepared is not None
    rng = np.random.default_rng(n)
    for trial in range(40):
        params = [rng.standard_normal(n).astype(np.float32) for _ in range(n_params)]
        assert_same_as_ref(ref, prepared, attrs, [spread(rng, (3, 4, n))] + params,
                           (op_name, n, trial))
    # non-finite rows (inf, nan) and a transposed (non-contiguous) input
    x = spread(rng, (3, 4, n))
    x[0, 0, 0], x[1, 2, -1] = np.inf, np.nan
    assert_same_as_ref(ref, prepared, attrs, [x] + params, (op_name, n, "non-finite"))
    xt = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert_same_as_ref(ref, prepared, attrs, [xt] + params, (op_name, n, "strided"))


@needs_numba
@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("causal,window", [(False, 0), (True, 0), (True, 3)])
@pytest.mark.parametrize("t,past", [(1, 0), (1, 7), (5, 3), (8, 0), (4, 130)])
def test_compiled_attention_bits(heads, kv_heads, causal, window, t, past):
    d, s = 16, t + past
    types = [TensorType((2, heads, t, d), DType.f32)] + \
        [TensorType((2, kv_heads, s, d), DType.f32)] * 2
    ref, prepared, attrs = prepared_and_ref(
        "attention", types, {"scale": 0.25, "causal": causal, "sliding_window": window})
    assert prepared is not None
    rng = np.random.default_rng(heads * 100 + t * 10 + past)
    for trial in range(10):
        ins = [spread(rng, (2, heads, t, d)), spread(rng, (2, kv_heads, s, d)),
               spread(rng, (2, kv_heads, s, d))]
        if trial == 0:
            ins[0][0, 0, 0, 0] = np.nan                 # a NaN score row stays NaN
        assert_same_as_ref(ref, prepared, attrs, ins, (heads, kv_heads, t, past, trial))


def test_attention_with_a_mask_or_nan_guard_keeps_numpy():
    types = [TensorType((1, 2, 3, 8), DType.f32)] + [TensorType((1, 2, 3, 8), DType.f32)] * 2
    od = lookup("attention")
    prepare = od.extra["prepare"]
    mask = [TensorType((3, 3), DType.bool)]
    assert prepare(od.full_attrs({"scale": 0.5}), [None] * 4, types + mask) is None
    assert prepare(od.full_attrs({"scale": 0.5, "nan_to_zero": True}), [None] * 3,
                   types) is None


@needs_numba
def test_compiled_gelu_bits():
    types = [TensorType((3, 50), DType.f32)]
    ref, prepared, attrs = prepared_and_ref("gelu", types, {"approximate": "tanh"})
    rng = np.random.default_rng(7)
    for trial in range(40):
        assert_same_as_ref(ref, prepared, attrs, [spread(rng, (3, 50))], trial)
    x = spread(rng, (3, 50))
    x[0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    assert_same_as_ref(ref, prepared, attrs, [x], "non-finite")
    assert lookup("gelu").extra["prepare"](lookup("gelu").full_attrs({}), [None],
                                           types) is None      # erf form: numpy


@needs_numba
def test_long_rows_and_other_dtypes_keep_numpy():
    od = lookup("layernorm")
    attrs = od.full_attrs({"eps": 1e-5})
    long_rows = [TensorType((2, 129), DType.f32), TensorType((129,), DType.f32)]
    assert od.extra["prepare"](attrs, [None, None], long_rows) is None
    f16 = [TensorType((2, 64), DType.f16), TensorType((64,), DType.f16)]
    assert od.extra["prepare"](attrs, [None, None], f16) is None


@pytest.mark.parametrize("transpose_w", [False, True])
@pytest.mark.parametrize("bias", [None, "flat", "row"])
@pytest.mark.parametrize("lead", [(1,), (1, 1), (1, 5), (2, 8), (3, 2, 4)])
def test_prepared_linear_bits(transpose_w, bias, lead):
    k, n = 64, 96
    w_shape = (n, k) if transpose_w else (k, n)
    types = [TensorType(lead + (k,), DType.f32), TensorType(w_shape, DType.f32)]
    if bias:
        types.append(TensorType((n,) if bias == "flat" else (1, n), DType.f32))
    ref, prepared, attrs = prepared_and_ref("linear", types, {"transpose_w": transpose_w})
    assert prepared is not None
    rng = np.random.default_rng(len(lead) * 10 + lead[-1])
    for trial in range(10):
        ins = [spread(rng, t.shape) for t in types]
        assert_same_as_ref(ref, prepared, attrs, ins, (lead, trial))


PASSTHROUGH = """
graph @g(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> ("x": tensor<2x3xf32>, "c": tensor<2xi64>, "s": tensor<2x3xf32>, "m": tensor<2x3xf32>) {
  %0 = const() {value = dense<tensor<2xi64> [4, 5]>} : tensor<2xi64>
  %1 = add(%x, %y) : tensor<2x3xf32>
  %2 = mul(%1, %1) : tensor<2x3xf32>
  return %x, %0, %1, %2
}
"""


def test_straight_line_program_outputs_inputs_constants_and_intermediates():
    """Outputs that are an input, a constant, a value also used later, and a last value:
    the generated function returns each as the step loop does."""
    from speccc.ir.parser import parse_module
    from speccc.ir.straightline import StraightLineProgram
    g = next(iter(parse_module(PASSTHROUGH, "<test>")))
    feeds = {"x": np.arange(6, dtype=np.float32).reshape(2, 3),
             "y": np.ones((2, 3), np.float32)}
    plan, plain = Plan(g), Plan(g, prepare=False)
    want = plain.run(feeds)
    for _ in range(3):
        got = plan.run(feeds)
        assert sorted(got) == sorted(want) == ["c", "m", "s", "x"]
        assert all(same_bits(got[k], want[k]) for k in want)
    assert type(plan._bound[((2, 3), (2, 3))][2]) is StraightLineProgram
    assert type(plain._bound[((2, 3), (2, 3))][2]) is list
