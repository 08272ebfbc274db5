"""ONNX's own node conformance cases run through speccc.onnx_backend.

Every case whose ops are all declared (a converter exists at the case's opset) must
pass with the case's own tolerances: a declared op passes all of its node cases or is
not declared. There is no exclusion list.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
import pytest

from speccc.frontend.onnx_import import non_tensor_values, unsupported_ops
from speccc.onnx_backend import SpecccBackend, declared_ops


@functools.cache
def all_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases
        return [c for c in collect_testcases(None) if c.kind == "node"]


def case_supported(case) -> bool:
    """The importer accepts the model: tensor types only, a converter for every node."""
    return not non_tensor_values(case.model) and not unsupported_ops(case.model)


def selected_cases():
    return [c for c in all_cases() if case_supported(c)]


def case_op_types(case) -> set[str]:
    return {(f"{n.domain}." if n.domain not in ("", "ai.onnx") else "") + n.op_type
            for n in case.model.graph.node}


def _array(x):
    return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


@pytest.mark.parametrize("case", selected_cases(), ids=lambda c: c.name)
def test_node_case(case):
    rep = SpecccBackend.prepare(case.model)
    for inputs, expected in case.data_sets:
        outputs = rep.run([_array(x) for x in inputs])
        expected = [_array(x) for x in expected]
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected):
            want = np.asarray(want)
            got = np.asarray(got)
            if want.dtype == object or want.dtype.kind in "US":
                assert got.tolist() == want.tolist()
                continue
            assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
            assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)


# Declared ops that onnx ships no node case for; each has its own tests elsewhere.
NO_NODE_CASES = {"com.microsoft.MatMulNBits"}


def test_every_declared_op_is_exercised():
    covered = set().union(*(case_op_types(c) for c in selected_cases()))
    untested = set(declared_ops()) - covered - NO_NODE_CASES
    assert not untested, f"declared ops with no runnable node case: {sorted(untested)}"


def test_at_least_fifty_ops_declared():
    assert len(declared_ops()) >= 50, declared_ops()
