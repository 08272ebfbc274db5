"""The reference Plan's per-run checks: result types are checked on the first run with
each input-shape signature, input dtypes and shapes on every run."""
from __future__ import annotations

import numpy as np
import pytest

from speccc import zoo
from speccc.errors import SpecccError, VerifyError
from speccc.frontend.onnx_import import import_model
from speccc.ir.interpreter import Plan
from speccc.ir.opdefs import lookup
from speccc.pipeline import run_canonical


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "m.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), path)
    module = import_model(path)
    run_canonical(module)
    return next(iter(module))


def test_wrong_result_shape_caught_at_every_new_shape_signature(graph):
    op = next(o for o in graph.ops() if o.name == "linear")
    ref, seen = lookup("linear").ref, []

    def wrong_from_second_signature(ins, attrs):
        seen.append(ins[0].shape)
        out = ref(ins, attrs)
        return [out[0][..., :-1]] if len(set(seen)) > 1 else out

    plan = Plan(graph, {op: wrong_from_second_signature})
    small = zoo.example_inputs("llama-tiny", "decode", 1, 4)
    first = plan.run(small)
    again = plan.run(small)                       # same signature: reuses its bindings
    assert all(np.array_equal(first[k], again[k]) for k in first)
    with pytest.raises(VerifyError, match="linear: computed"):
        plan.run(zoo.example_inputs("llama-tiny", "decode", 5, 3))


def test_input_dtype_checked_on_every_run(graph):
    plan = Plan(graph)
    feeds = zoo.example_inputs("llama-tiny", "decode", 1, 4)
    plan.run(feeds)
    name = next(k for k, v in feeds.items() if v.dtype == np.float32)
    bad = {**feeds, name: feeds[name].astype(np.float64)}
    with pytest.raises(SpecccError, match=f"input '{name}' has dtype float64"):
        plan.run(bad)


def test_index_error_in_the_data_names_its_op(graph):
    """Token ids out of range: a located SpecccError naming the gather, both on a
    signature's first run (every result checked) and on later ones (the fast loop)."""
    feeds = zoo.example_inputs("llama-tiny", "decode", 1, 4)
    ids = next(k for k, v in feeds.items() if v.dtype == np.int64)
    bad = {**feeds, ids: np.full_like(feeds[ids], 10**6)}
    warmed = Plan(graph)
    warmed.run(feeds)
    for plan in (Plan(graph), warmed):
        with pytest.raises(SpecccError, match=r"gather: index out of range in the data"):
            plan.run(bad)
