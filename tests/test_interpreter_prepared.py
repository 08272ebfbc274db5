"""Plan's prepared path (op `prepare` hooks: compiled norms, ...) gives the plain per-op
path's results bit for bit: on the zoo models as the benchmark runs them (canonical
pipeline, prefill and decode) and on the norm kernels over row lengths around numpy's
pairwise-summation blocks."""
from __future__ import annotations

import numpy as np
import pytest

from speccc import driver, zoo
from speccc.ir.interpreter import Plan, bind_inputs
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
    if compiled.kernels() is not None:
        # the comparison is not vacuous: some step did run a prepared form
        plain_refs = [step[1] for step in prepared.steps]
        assert any(r is not p for r, p in zip(prepared._program_refs(), plain_refs))


def norm_refs(op_name: str, n: int, n_params: int):
    od = lookup(op_name)
    types = [TensorType((3, 4, n), DType.f32)] + [TensorType((n,), DType.f32)] * n_params
    attrs = od.full_attrs({"eps": 1e-5})
    return od.ref, od.extra["prepare"](attrs, [None] * len(types), types), attrs


@pytest.mark.parametrize("op_name,n_params", [("layernorm", 2), ("layernorm", 1),
                                              ("rmsnorm", 1)])
@pytest.mark.parametrize("n", [1, 5, 8, 9, 16, 63, 64, 100, 127, 128])
def test_compiled_norm_bits(op_name, n_params, n):
    if compiled.kernels() is None:
        pytest.skip("numba not installed: the numpy reference is the only path")
    ref, prepared, attrs = norm_refs(op_name, n, n_params)
    assert prepared is not None
    rng = np.random.default_rng(n)
    for trial in range(40):
        scale = 10.0 ** rng.uniform(-3, 3)
        x = (rng.standard_normal((3, 4, n)) * scale + rng.standard_normal() * scale)
        params = [rng.standard_normal(n).astype(np.float32) for _ in range(n_params)]
        ins = [x.astype(np.float32)] + params
        with np.errstate(all="ignore"):
            want = ref(ins, attrs)[0]
            got = prepared(ins, attrs)[0]
        assert same_bits(got, want), (op_name, n, trial)
    # a transposed (non-contiguous) input takes the same values
    xt = np.ascontiguousarray(ins[0].transpose(1, 0, 2)).transpose(1, 0, 2)
    assert same_bits(prepared([xt] + params, attrs)[0], ref([xt] + params, attrs)[0])


def test_long_rows_and_other_dtypes_keep_numpy():
    if compiled.kernels() is None:
        pytest.skip("numba not installed")
    od = lookup("layernorm")
    attrs = od.full_attrs({"eps": 1e-5})
    long_rows = [TensorType((2, 129), DType.f32), TensorType((129,), DType.f32)]
    assert od.extra["prepare"](attrs, [None, None], long_rows) is None
    f16 = [TensorType((2, 64), DType.f16), TensorType((64,), DType.f16)]
    assert od.extra["prepare"](attrs, [None, None], f16) is None
