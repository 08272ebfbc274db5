"""Shape / indexing ops under symbolic dims: the subgraphs LLM exports build.

Each graph has inputs with dim_params (T new tokens, P past length). Importing must fold
the shape arithmetic into symbolic result types (no shape/gather/concat left), and the
reference interpreter must agree with onnxruntime for concrete T and P.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from speccc.errors import SpecccError
from speccc.frontend.onnx_import import import_model, sanitize_name
from speccc.ir.interpreter import run_graph
from speccc.ir.opdefs import infer_types
from speccc.ir.types import Sym, TensorType, parse_type

F, I64 = TensorProto.FLOAT, TensorProto.INT64
INT_MAX = np.iinfo(np.int64).max
SHAPE_OPS = {"shape", "gather", "concat", "unsqueeze", "squeeze", "slice", "size", "add"}


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, inputs, outputs, inits=(), opset=18):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8  # what the installed onnxruntime reads
    return m


def out(name, rank, elem=F):
    # Unknown dims of a known rank: the checker wants a shape, the importer ignores it.
    return helper.make_tensor_value_info(name, elem, [None] * rank)


def imported(m):
    g = import_model(m).graphs["target"]
    return g, {n: v.type for n, v in zip(g.output_names, g.outputs)}


def op_names(g):
    return sorted(op.name for op in g.ops())


def run_both(m, feeds):
    """Run speccc's interpreter and onnxruntime; assert the outputs agree."""
    g, _ = imported(m)
    got = run_graph(g, {sanitize_name(k): v for k, v in feeds.items()})
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in m.graph.output]
    want = sess.run(names, feeds)
    for n, w in zip(names, want):
        assert got[n].dtype == w.dtype and got[n].shape == w.shape, n
        np.testing.assert_allclose(got[n], w, rtol=1e-6, atol=1e-6)
    return got


def rand(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_shape_gather_unsqueeze_concat_reshape_folds_to_symbolic_target():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["t"], axis=0),
        helper.make_node("Unsqueeze", ["t", "zero_ax"], ["t1"]),
        helper.make_node("Concat", ["c1", "t1", "c4", "c16"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [i64("one", 1), i64("zero_ax", [0]), i64("c1", [1]), i64("c4", [4]),
             i64("c16", [16])]
    m = model(nodes, [helper.make_tensor_value_info("x", F, [1, "T", 64])], [out("y", 4)], inits)
    g, types = imported(m)
    assert str(types["y"]) == "tensor<1x?Tx4x16xf32>"
    assert not SHAPE_OPS & set(op_names(g)), op_names(g)
    assert op_names(g) == ["reshape", "sym_dims"]
    run_both(m, {"x": rand(1, 5, 64)})


def test_reshape_minus_one_and_zero_divide_symbolic_products():
    nodes = [helper.make_node("Reshape", ["x", "tgt"], ["y"]),
             helper.make_node("Flatten", ["x"], ["z"], axis=2)]
    m = model(nodes, [helper.make_tensor_value_info("x", F, [1, "T", 64])],
              [out("y", 3), out("z", 2)], [i64("tgt", [0, -1, 16])])
    _, types = imported(m)
    assert str(types["y"]) == "tensor<1x?{4*T}x16xf32>"
    assert str(types["z"]) == "tensor<?Tx64xf32>"
    run_both(m, {"x": rand(1, 5, 64)})


def test_range_less_causal_mask():
    # mask[i, j] = j <= i over T positions, from Range(0, T, 1): the length is T.
    nodes = [
        helper.make_node("Shape", ["ids"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["t"], axis=0),
        helper.make_node("Range", ["zero", "t", "one"], ["r"]),
        helper.make_node("Unsqueeze", ["r", "ax0"], ["row"]),
        helper.make_node("Unsqueeze", ["r", "ax1"], ["col"]),
        helper.make_node("Less", ["col", "row"], ["future"]),
        helper.make_node("Where", ["future", "neg", "zf"], ["bias"]),
    ]
    inits = [i64("one", 1), i64("zero", 0), i64("ax0", [0]), i64("ax1", [1]),
             numpy_helper.from_array(np.array(-1e9, np.float32), "neg"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zf")]
    m = model(nodes, [helper.make_tensor_value_info("ids", I64, [1, "T"])],
              [out("future", 2, TensorProto.BOOL), out("bias", 2)], inits)
    g, types = imported(m)
    assert str(types["future"]) == "tensor<?Tx?Txi1>"
    assert str(types["bias"]) == "tensor<?Tx?Txf32>"
    assert "range" in op_names(g) and not {"shape", "gather"} & set(op_names(g))
    run_both(m, {"ids": np.zeros((1, 5), np.int64)})


def _positions_model():
    # Positions P .. P+T-1 (a rotary position id computation).
    nodes = [
        helper.make_node("Shape", ["past"], ["ps"]),
        helper.make_node("Gather", ["ps", "two"], ["p"], axis=0),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "one"], ["t"], axis=0),
        helper.make_node("Add", ["p", "t"], ["end"]),
        helper.make_node("Range", ["p", "end", "one"], ["pos"]),
    ]
    return model(nodes, [helper.make_tensor_value_info("past", F, [1, 2, "P", 8]),
                         helper.make_tensor_value_info("x", F, [1, "T", 16])],
                 [out("pos", 1, I64)], [i64("one", 1), i64("two", 2)])


def test_range_from_past_to_past_plus_new():
    m = _positions_model()
    g, types = imported(m)
    assert str(types["pos"]) == "tensor<?Txi64>"
    assert op_names(g) == ["const", "range", "sym_dims", "sym_dims"]
    got = run_both(m, {"past": rand(1, 2, 3, 8), "x": rand(1, 5, 16)})
    assert got["pos"].tolist() == [3, 4, 5, 6, 7]


def _rotary_model():
    # cos table [64, 16] sliced at [P : P+T] and [0 : T]; x[:, 1:INT_MAX] on a T dim.
    nodes = [
        helper.make_node("Shape", ["past"], ["ps"]),
        helper.make_node("Slice", ["ps", "two", "three"], ["p1"]),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Slice", ["xs", "one", "two"], ["t1"]),
        helper.make_node("Add", ["p1", "t1"], ["end"]),
        helper.make_node("Slice", ["table", "p1", "end", "zero"], ["window"]),
        helper.make_node("Slice", ["table", "zero", "t1", "zero"], ["head"]),
        helper.make_node("Slice", ["x", "one", "big", "one"], ["tail"]),
        helper.make_node("Slice", ["x", "minus1", "minbig", "one", "minus1"], ["rev"]),
    ]
    inits = [i64("zero", [0]), i64("one", [1]), i64("two", [2]), i64("three", [3]),
             i64("big", [INT_MAX]), i64("minus1", [-1]), i64("minbig", [-INT_MAX]),
             numpy_helper.from_array(rand(64, 16), "table")]
    return model(nodes, [helper.make_tensor_value_info("past", F, [1, 2, "P", 8]),
                         helper.make_tensor_value_info("x", F, [1, "T", 16])],
                 [out("window", 2), out("head", 2), out("tail", 3), out("rev", 3)], inits)


def test_slice_with_symbolic_starts_and_ends():
    m = _rotary_model()
    g, types = imported(m)
    assert str(types["window"]) == "tensor<?Tx16xf32>"
    assert str(types["head"]) == "tensor<?Tx16xf32>"
    assert str(types["tail"]) == "tensor<1x?{T-1}x16xf32>"
    assert str(types["rev"]) == "tensor<1x?Tx16xf32>"
    assert not {"shape", "add"} & set(op_names(g))
    run_both(m, {"past": rand(1, 2, 3, 8), "x": rand(1, 5, 16)})


def test_expand_to_symbolic_shape():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Expand", ["bias", "s"], ["y"]),
        helper.make_node("ConstantOfShape", ["s"], ["ones"],
                         value=numpy_helper.from_array(np.array([1.0], np.float32))),
        helper.make_node("Size", ["x"], ["n"]),
    ]
    m = model(nodes, [helper.make_tensor_value_info("x", F, [1, "T", 8])],
              [out("y", 3), out("ones", 3), out("n", 0, I64)],
              [numpy_helper.from_array(rand(1, 1, 8), "bias")])
    g, types = imported(m)
    assert str(types["y"]) == "tensor<1x?Tx8xf32>"
    assert str(types["ones"]) == "tensor<1x?Tx8xf32>"
    assert str(types["n"]) == "tensor<i64>"
    assert "size" not in op_names(g)  # folds to the scalar 8*T
    got = run_both(m, {"x": rand(1, 5, 8)})
    assert int(got["n"]) == 40


def test_kv_cache_concat_and_split():
    nodes = [helper.make_node("Concat", ["past", "new"], ["present"], axis=2),
             helper.make_node("Split", ["qkv"], ["q", "k", "v"], axis=2, num_outputs=3)]
    m = model(nodes, [helper.make_tensor_value_info("past", F, [1, 2, "P", 8]),
                      helper.make_tensor_value_info("new", F, [1, 2, "T", 8]),
                      helper.make_tensor_value_info("qkv", F, [1, "T", 48])],
              [out("present", 4), out("q", 3), out("k", 3), out("v", 3)])
    _, types = imported(m)
    assert str(types["present"]) == "tensor<1x2x?{P+T}x8xf32>"
    assert str(types["v"]) == "tensor<1x?Tx16xf32>"
    run_both(m, {"past": rand(1, 2, 3, 8), "new": rand(1, 2, 5, 8), "qkv": rand(1, 5, 48)})


def test_transpose_squeeze_gather_symbolic():
    nodes = [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1, 3]),
             helper.make_node("Squeeze", ["x", "zero"], ["z"]),
             helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),
             helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant")]
    m = model(nodes, [helper.make_tensor_value_info("x", F, [1, "T", 2, 8]),
                      helper.make_tensor_value_info("ids", I64, [1, "T"])],
              [out("y", 4), out("z", 3), out("e", 3), out("p", 4)],
              [i64("zero", [0]), i64("pads", [0, 0, 0, 1, 0, 0, 0, 2]),
               numpy_helper.from_array(rand(100, 8), "emb")])
    _, types = imported(m)
    assert [str(types[k]) for k in "yzep"] == [
        "tensor<1x2x?Tx8xf32>", "tensor<?Tx2x8xf32>", "tensor<1x?Tx8xf32>",
        "tensor<1x?Tx2x11xf32>"]
    run_both(m, {"x": rand(1, 5, 2, 8), "ids": np.array([[1, 7, 99, 0, 3]], np.int64)})


def test_symbolic_dims_print_and_parse_back():
    from speccc.ir.parser import parse_module
    from speccc.ir.printer import print_module
    for m in (_rotary_model(), _positions_model()):
        text = print_module(import_model(m))
        assert print_module(parse_module(text)) == text
    assert 'sym_dims() {dims = ["P+T"], scalar = true} : tensor<i64>' in text


@pytest.mark.parametrize("dim,start,end,step,want", [
    (Sym.of("T"), 0, INT_MAX, 1, "?T"),
    (Sym.of("T"), -1, INT_MAX, 1, "1"),
    (Sym.of("T"), -INT_MAX, INT_MAX, 2, None),  # ceil(T/2) is not a polynomial
    (Sym.of("T") * 2, 0, INT_MAX, 2, "?T"),
    (Sym.of("T") + Sym.of("P"), Sym.of("P"), INT_MAX, 1, "?T"),
    (Sym.of("T"), INT_MAX, -INT_MAX, -1, "?T"),
    (Sym.of("T"), 0, Sym.of("T") + 3, 1, "?T"),  # end beyond the dim clamps to it
    (10, 2, -1, 1, "7"),
    (10, -1, -20, -3, "4"),
])
def test_slice_length_rules(dim, start, end, step, want):
    from speccc.ir.folding import materialize
    from speccc.ir.core import Graph
    g = Graph("g")
    x = g.add_argument("x", TensorType((dim,), parse_type("tensor<f32>").dtype))
    vals = [materialize(g, np.array([v], dtype=object if isinstance(v, Sym) else np.int64))
            .result for v in (start, end, 0, step)]
    if want is None:
        with pytest.raises(SpecccError):
            infer_types("slice", [x.type] + [v.type for v in vals], {}, [x] + vals)
        return
    (t,) = infer_types("slice", [x.type] + [v.type for v in vals], {}, [x] + vals)
    assert str(t.shape[0]) == want


def test_reshape_rejects_mismatched_symbolic_count():
    from speccc.ir.folding import materialize
    from speccc.ir.core import Graph
    g = Graph("g")
    x = g.add_argument("x", parse_type("tensor<1x?Tx64xf32>"))
    tgt = materialize(g, np.array([1, Sym.of("P"), 64], dtype=object)).result
    with pytest.raises(SpecccError, match="cannot reshape"):
        infer_types("reshape", [x.type, tgt.type], {}, [x, tgt])


def test_binding_symbols_folds_scalar_dims_to_constants():
    from speccc.pipeline import run_canonical
    module = import_model(_positions_model())
    run_canonical(module, "fold{bind=T=5:P=3}")
    g = module.graphs["target"]
    assert op_names(g) == ["const"]
    assert g.outputs[0].op.attrs["value"].tolist() == [3, 4, 5, 6, 7]


def test_causal_mask_over_past_and_new_tokens():
    # HF-style: rows P..P+T-1, cols 0..P+T-1, mask = col <= row, expanded to
    # [1, 1, T, P+T] through Where(Equal(shape, -1), 1, shape) as exporters spell it.
    nodes = [
        helper.make_node("Shape", ["past"], ["ps"]),
        helper.make_node("Gather", ["ps", "two"], ["p"], axis=0),
        helper.make_node("Shape", ["ids"], ["is"]),
        helper.make_node("Gather", ["is", "one"], ["t"], axis=0),
        helper.make_node("Add", ["p", "t"], ["total"]),
        helper.make_node("Range", ["p", "total", "one"], ["rows"]),
        helper.make_node("Range", ["zero", "total", "one"], ["cols"]),
        helper.make_node("Unsqueeze", ["rows", "ax1"], ["rows2"]),
        helper.make_node("Unsqueeze", ["cols", "ax0"], ["cols2"]),
        helper.make_node("LessOrEqual", ["cols2", "rows2"], ["mask"]),
        helper.make_node("Unsqueeze", ["t", "ax0"], ["t1"]),
        helper.make_node("Unsqueeze", ["total", "ax0"], ["total1"]),
        helper.make_node("Concat", ["one1", "minus1", "t1", "total1"], ["shp"], axis=0),
        helper.make_node("Equal", ["shp", "minus1"], ["isneg"]),
        helper.make_node("Where", ["isneg", "one1", "shp"], ["shp2"]),
        helper.make_node("Expand", ["mask", "shp2"], ["y"]),
    ]
    inits = [i64("one", 1), i64("two", 2), i64("zero", 0), i64("ax0", [0]),
             i64("ax1", [1]), i64("one1", [1]), i64("minus1", [-1])]
    m = model(nodes, [helper.make_tensor_value_info("past", F, [1, 2, "P", 8]),
                      helper.make_tensor_value_info("ids", I64, [1, "T"])],
              [out("y", 4, TensorProto.BOOL)], inits)
    g, types = imported(m)
    assert str(types["y"]) == "tensor<1x1x?Tx?{P+T}xi1>"
    assert not {"shape", "gather", "concat", "equal", "where"} & set(op_names(g))
    got = run_both(m, {"past": rand(1, 2, 3, 8), "ids": np.zeros((1, 4), np.int64)})
    assert got["y"].shape == (1, 1, 4, 7) and got["y"][0, 0, 0].tolist() == [1] * 4 + [0] * 3


def test_reshape_minus_one_divides_by_a_sum_and_const_plus_symbolic_folds():
    # The KV reshape of decode exports: [1, 4, P+T, 16] -> [-1, P+T, 16] (needs
    # polynomial division), with P+T computed as 0-d `1 + (T - 1) + P` (const first).
    nodes = [
        helper.make_node("Concat", ["past", "new"], ["kv"], axis=2),
        helper.make_node("Shape", ["kv"], ["s"], start=2, end=3),
        helper.make_node("Squeeze", ["s"], ["total"]),
        helper.make_node("Sub", ["total", "one"], ["tm1"]),
        helper.make_node("Add", ["one", "tm1"], ["total2"]),
        helper.make_node("Unsqueeze", ["total2", "ax0"], ["total1"]),
        helper.make_node("Concat", ["minus1", "total1", "c16"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["kv", "tgt"], ["y"]),
    ]
    m = model(nodes, [helper.make_tensor_value_info("past", F, [1, 4, "P", 16]),
                      helper.make_tensor_value_info("new", F, [1, 4, "T", 16])],
              [out("y", 3)], [i64("one", 1), i64("ax0", [0]), i64("minus1", [-1]),
                              i64("c16", [16])])
    g, types = imported(m)
    assert str(types["y"]) == "tensor<4x?{P+T}x16xf32>"
    assert op_names(g) == ["concat", "reshape", "sym_dims"]
    run_both(m, {"past": rand(1, 4, 3, 16), "new": rand(1, 4, 2, 16)})


def test_gather_and_slice_cost_counts_selected_rows_only():
    from speccc.ir.opdefs import op_cost
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0)]
    m = model(nodes, [helper.make_tensor_value_info("ids", I64, [1, "T"])], [out("e", 3)],
              [numpy_helper.from_array(rand(1000, 8), "emb")])
    g, _ = imported(m)
    (gather,) = [op for op in g.ops() if op.name == "gather"]
    cost = op_cost(gather)
    # T rows of 8 f32 plus T i64 indices; not the 32 KB table.
    assert str(cost.bytes_read) == "?{40*T}" and str(cost.bytes_written) == "?{32*T}"
