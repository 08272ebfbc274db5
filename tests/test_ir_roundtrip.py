"""Print/parse round trips: print(parse(t)) == t for canonical t, and parse(print(g)) ≅ g."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from speccc.ir.core import Module
from speccc.ir.equality import modules_equal
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.ir.types import DType, Sym, TensorType, parse_type
from speccc.ir.verifier import verify

SYMS = ["T", "P", "B"]
dims = st.one_of(st.integers(1, 7), st.sampled_from(SYMS).map(Sym.of))
shapes = st.lists(dims, min_size=0, max_size=4).map(tuple)
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
UNARY = ["neg", "exp", "tanh", "sigmoid", "relu", "sqrt", "abs", "identity"]
BINARY = ["add", "sub", "mul", "div", "max", "min"]


@st.composite
def modules(draw):
    m = Module()
    g = m.new_graph(draw(st.sampled_from(["target", "draft", "g0"])))
    shape = draw(shapes)
    values = [g.add_argument(f"x{i}", TensorType(shape, DType.f32))
              for i in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "const", "gelu", "leaky"]))
        if kind == "unary":
            op = g.create(draw(st.sampled_from(UNARY)), [draw(st.sampled_from(values))])
        elif kind == "binary":
            op = g.create(draw(st.sampled_from(BINARY)),
                          [draw(st.sampled_from(values)), draw(st.sampled_from(values))])
        elif kind == "const":
            n = draw(st.integers(0, 5))
            arr = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float32)
            c = g.create("const", [], {"value": arr})
            if shape == (n,):  # usable as an operand only where shapes agree
                values.append(c.result)
            continue
        elif kind == "gelu":
            op = g.create("gelu", [draw(st.sampled_from(values))],
                          {"approximate": draw(st.sampled_from(["none", "tanh"]))})
        else:
            op = g.create("leaky_relu", [draw(st.sampled_from(values))],
                          {"alpha": draw(st.floats(-10, 10, allow_nan=False))})
        values.append(op.result)
    k = draw(st.integers(1, min(3, len(values))))
    outs = values[-k:]
    g.set_outputs(outs, [f"out.{i}" for i in range(k)])
    if draw(st.booleans()):
        g.attrs = {"note": draw(st.text(max_size=8)), "pairs": [["a", "b", 2]],
                   "eps": draw(floats)}
    return m


@settings(max_examples=150, deadline=None)
@given(modules())
def test_parse_print_is_structural_identity(m):
    text = print_module(m)
    m2 = parse_module(text)
    verify(m2)
    assert modules_equal(m, m2)
    assert print_module(m2) == text  # printing parsed canonical text gives it back


@given(shapes, st.sampled_from(list(DType)))
def test_type_roundtrip(shape, dtype):
    t = TensorType(shape, dtype)
    assert parse_type(str(t)) == t


def test_symbolic_expressions_print_canonically():
    T, P = Sym.of("T"), Sym.of("P")
    t = TensorType((P + T, 2 * T, T * P, P - 1), DType.f16)
    assert str(t) == "tensor<?{P+T}x?{2*T}x?{P*T}x?{P-1}xf16>"
    assert parse_type(str(t)) == t
