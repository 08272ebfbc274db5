"""The compile-speed caches change nothing observable: the cached topological order
follows every edit, the memoised verifier still catches an edit made after a clean
verify, and the fuse worklist offers each op exactly the rules that could match it."""
from __future__ import annotations

import pytest

from speccc.errors import VerifyError
from speccc.ir.core import Module
from speccc.ir.types import DType, TensorType
from speccc.ir.verifier import verify
from speccc.passes._patterns import Alt, Check, Op, Opt, V, root_names

F32 = TensorType((2, 3), DType.f32)


def _graph():
    m = Module()
    g = m.new_graph("target")
    x = g.add_argument("x", F32)
    a = g.create("neg", [x])
    b = g.create("exp", [a.result])
    g.set_outputs([b.result], ["y"])
    return m, g, x, a, b


def test_cached_order_follows_edits():
    _, g, x, a, b = _graph()
    assert g.ops() == [a, b]
    c = g.create("relu", [x])
    b.set_operand(0, c.result)
    assert g.ops() == [a, c, b]
    g.erase_op(a)
    assert g.ops() == [c, b]
    g.ops().clear()   # callers get a copy, never the cache itself
    assert g.ops() == [c, b]


def test_memoised_verifier_sees_later_edits():
    m, g, x, a, b = _graph()
    verify(m)
    a.results[0].type = TensorType((3, 2), DType.f32)   # now disagrees with inference
    with pytest.raises(VerifyError, match="result type"):
        verify(m)
    a.results[0].type = F32
    verify(m)
    b.attrs["bogus"] = 1
    with pytest.raises(Exception, match="bogus"):
        verify(m)
    del b.attrs["bogus"]
    verify(m)


def test_memoised_verifier_sees_a_cycle():
    m, g, x, a, b = _graph()
    verify(m)
    a.set_operand(0, b.result)
    with pytest.raises(VerifyError, match="cycle"):
        verify(m)


def test_root_names_index_the_rules():
    assert root_names(Op("mul", V("x"), V("y"))) == {"mul"}
    assert root_names(Check(Op(("add", "sub"), V("x"), V("y")), lambda v, m: True)) == {"add", "sub"}
    assert root_names(Opt("cast", Op("matmul", V("x"), V("w")))) == {"cast", "matmul"}
    assert root_names(Alt(Op("mul", V("x"), V("y")), V("z"))) is None
    assert root_names(V("x")) is None
