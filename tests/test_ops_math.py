"""Math / NN / reduction / quantization ops beyond onnx's node cases: MatMulNBits against
an independent numpy dequantizer and onnxruntime, symbolic shape inference, costs,
old-opset conversions, narrow dtypes through the printer/parser."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper

from speccc.ir.core import Module
from speccc.ir.opdefs import infer_types, op_cost
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.ir.types import DType, Sym, TensorType
from speccc.onnx_backend import SpecccBackend

ort = pytest.importorskip("onnxruntime")
T, P = Sym.of("T"), Sym.of("P")


def _model(nodes, inputs, outputs, inits=(), opset=21, ms=False):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    ops = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("com.microsoft", 1)]
                                               if ms else [])
    return helper.make_model(g, opset_imports=ops)


def _ort(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def _speccc(model, feeds):
    return SpecccBackend.prepare(model).run(feeds)

# --- MatMulNBits ---------------------------------------------------------------------------


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack codes (last axis) low-bit first into bytes, one element at a time."""
    out = np.zeros(codes.shape[:-1] + (-(-codes.shape[-1] * bits // 8),), dtype=np.uint8)
    for idx in np.ndindex(codes.shape[:-1]):
        for j, c in enumerate(codes[idx]):
            for b in range(bits):
                if int(c) >> b & 1:
                    pos = j * bits + b
                    out[idx + (pos // 8,)] |= np.uint8(1 << (pos % 8))
    return out


def _nbits_case(rng, k, n, blk, bits, zp_kind, dtype=np.float32):
    nb = -(-k // blk)
    q = rng.integers(0, 1 << bits, size=(n, nb * blk))
    b = _pack(q.reshape(n, nb, blk), bits)
    scales = (rng.random((n, nb)) * 0.1 + 0.01).astype(dtype)
    if zp_kind == "none":
        zp, zp_f = None, np.full((n, nb), 1 << (bits - 1), dtype=np.float64)
    elif zp_kind == "packed":
        zq = rng.integers(0, 1 << bits, size=(n, nb))
        zp, zp_f = _pack(zq, bits), zq.astype(np.float64)
    else:
        zp = (rng.random((n, nb)) * (1 << bits)).astype(dtype)
        zp_f = zp.astype(np.float64)
    # Independent reference: dequantize element by element in f64.
    w = np.empty((n, k))
    for i in range(n):
        for j in range(k):
            w[i, j] = (q[i, j] - zp_f[i, j // blk]) * float(scales[i, j // blk])
    return b, scales, zp, w


def _nbits_model(a_shape, k, n, blk, bits, b, scales, zp, bias=None, g_idx=None,
                 elem=TP.FLOAT):
    inits = [helper.make_tensor("B", TP.UINT8, b.shape, b.tobytes(), raw=True),
             helper.make_tensor("S", elem, scales.shape, scales.tobytes(), raw=True)]
    names = ["A", "B", "S"]
    for name, arr, et in (("Z", zp, None), ("G", g_idx, TP.INT32), ("bias", bias, elem)):
        if arr is None:
            names.append("")
            continue
        et = et or (TP.UINT8 if arr.dtype == np.uint8 else elem)
        inits.append(helper.make_tensor(name, et, arr.shape, arr.tobytes(), raw=True))
        names.append(name)
    while names[-1] == "":
        names.pop()
    node = helper.make_node("MatMulNBits", names, ["Y"], domain="com.microsoft", K=k, N=n,
                            bits=bits, block_size=blk)
    out_shape = list(a_shape[:-1]) + [n]
    return _model([node], [helper.make_tensor_value_info("A", elem, list(a_shape))],
                  [helper.make_tensor_value_info("Y", elem, out_shape)], inits, ms=True)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("zp_kind", ["none", "packed", "float"])
@pytest.mark.parametrize("k,blk", [(64, 16), (80, 32)])  # 80: a partial last block
def test_matmul_nbits_matches_numpy_and_ort(bits, zp_kind, k, blk):
    rng = np.random.default_rng(bits * 100 + k)
    n = 12
    b, scales, zp, w = _nbits_case(rng, k, n, blk, bits, zp_kind)
    a = rng.standard_normal((2, 3, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    model = _nbits_model(a.shape, k, n, blk, bits, b, scales, zp, bias=bias)
    (got,) = _speccc(model, [a])
    want = a.astype(np.float64) @ w.T + bias
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    try:
        (ref,) = _ort(model, {"A": a})
    except Exception as e:  # this ORT build lacks the variant (e.g. 2-bit)
        pytest.skip(f"onnxruntime: {str(e).splitlines()[0][:120]}")
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_matmul_nbits_fp16_and_g_idx():
    rng = np.random.default_rng(7)
    k, n, blk = 64, 8, 16
    b, scales, zp, w = _nbits_case(rng, k, n, blk, 4, "packed", dtype=np.float16)
    a = rng.standard_normal((5, k)).astype(np.float16)
    model = _nbits_model(a.shape, k, n, blk, 4, b, scales, zp, elem=TP.FLOAT16)
    (got,) = _speccc(model, [a])
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, a.astype(np.float64) @ w.T, rtol=2e-2, atol=2e-2)
    # An explicit g_idx equal to the default grouping is dropped; a permuted one is used.
    g_default = (np.arange(k) // blk).astype(np.int32)
    m2 = _nbits_model(a.shape, k, n, blk, 4, b, scales, zp, g_idx=g_default, elem=TP.FLOAT16)
    np.testing.assert_array_equal(_speccc(m2, [a])[0], got)
    g_perm = g_default[::-1].copy()
    m3 = _nbits_model(a.shape, k, n, blk, 4, b, scales, None, g_idx=g_perm, elem=TP.FLOAT16)
    q = np.stack([np.unpackbits(b[i].reshape(-1), bitorder="little").reshape(-1, 4)
                  @ (1 << np.arange(4)) for i in range(n)])
    w3 = (q - 8.0) * scales.astype(np.float64)[:, g_perm]
    np.testing.assert_allclose(_speccc(m3, [a])[0], a.astype(np.float64) @ w3.T,
                               rtol=2e-2, atol=2e-2)


def test_matmul_nbits_cost_counts_packed_bytes():
    k, n, blk = 4096, 4096, 32
    t = [TensorType((1, T, k), DType.f16), TensorType((n, k // blk, blk // 2), DType.u8),
         TensorType((n, k // blk), DType.f16)]
    m = Module()
    g = m.new_graph("target")
    args = [g.add_argument(f"x{i}", ty) for i, ty in enumerate(t)]
    op = g.create("matmul_nbits", args, {"K": k, "N": n, "bits": 4, "block_size": blk})
    assert op.result.type == TensorType((1, T, n), DType.f16)
    c = op_cost(op)
    assert c.flops == 2 * k * n * T + 2 * k * n
    # Weights are read packed: 4 bits per element plus one f16 scale per block.
    assert c.bytes_read == 2 * k * T + n * k // 2 + 2 * n * k // blk

# --- symbolic shapes and costs -------------------------------------------------------------


def _t(*shape, dt=DType.f32):
    return TensorType(tuple(shape), dt)


def test_matmul_symbolic_shapes_and_cost():
    assert infer_types("matmul", [_t(2, T, 64), _t(64, 128)], {}) == [_t(2, T, 128)]
    assert infer_types("matmul", [_t(1, 8, T, 64), _t(1, 8, 64, P + T)], {}) == \
        [_t(1, 8, T, P + T)]
    assert infer_types("matmul", [_t(64), _t(3, 64, 5)], {}) == [_t(3, 5)]
    assert infer_types("matmul", [_t(T, 64), _t(64)], {}) == [_t(T)]
    with pytest.raises(Exception, match="inner"):
        infer_types("matmul", [_t(T, 64), _t(P, 8)], {})
    m = Module()
    g = m.new_graph("target")
    a, b = g.add_argument("a", _t(T, 64)), g.add_argument("b", _t(64, 32))
    assert op_cost(g.create("matmul", [a, b])).flops == 2 * 64 * 32 * T


def test_reduce_softmax_norm_symbolic():
    m = Module()
    g = m.new_graph("target")
    x = g.add_argument("x", _t(1, T, P + T))
    axes = g.create("const", [], {"value": np.array([-1], dtype=np.int64)}).result
    r = g.create("reduce_max", [x, axes], {"keepdims": False})
    assert r.result.type == _t(1, T)
    assert g.create("reduce_sum", [x], {"keepdims": True}).result.type == _t(1, 1, 1)
    assert g.create("softmax", [x], {"axis": -1}).result.type == _t(1, T, P + T)
    assert g.create("argmax", [x], {"axis": 1, "keepdims": False}).result.type == \
        _t(1, P + T, dt=DType.i64)
    h = g.add_argument("h", _t(1, T, 64))
    s = g.add_argument("s", _t(64))
    ln = g.create("layer_norm", [h, s, s], {"axis": -1})
    assert [v.type for v in ln.results] == [_t(1, T, 64), _t(1, T, 1), _t(1, T, 1)]
    assert g.create("rms_norm", [h, s]).result.type == _t(1, T, 64)
    assert g.create("topk", [h], {"k": 4}).results[1].type == _t(1, T, 4, dt=DType.i64)
    e = g.create("einsum", [h, g.add_argument("w", _t(64, 8))], {"equation": "btk,kn->btn"})
    assert e.result.type == _t(1, T, 8)

# --- old opsets, fp16 accuracy -------------------------------------------------------------


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_before_13_coerces_to_2d(op, axis):
    x = np.random.default_rng(axis + 5).standard_normal((2, 3, 4)).astype(np.float32)
    model = _model([helper.make_node(op, ["x"], ["y"], axis=axis)],
                   [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3, 4])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [2, 3, 4])], opset=11)
    np.testing.assert_allclose(_speccc(model, [x])[0], _ort(model, {"x": x})[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSumSquare", "ReduceLogSumExp",
                                "ReduceSum"])
def test_reduce_axes_attribute_before_input(op):
    x = np.random.default_rng(1).random((2, 3, 4)).astype(np.float32)
    model = _model([helper.make_node(op, ["x"], ["y"], axes=[0, 2], keepdims=0)],
                   [helper.make_tensor_value_info("x", TP.FLOAT, [2, 3, 4])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [3])], opset=11)
    np.testing.assert_allclose(_speccc(model, [x])[0], _ort(model, {"x": x})[0], rtol=1e-5)


def test_fp16_matmul_gemm_reduce_accumulate_in_f32():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 2048)).astype(np.float16)
    b = rng.standard_normal((2048, 3)).astype(np.float16)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"]),
             helper.make_node("Gemm", ["a", "b"], ["z"], alpha=0.5),
             helper.make_node("ReduceSum", ["a"], ["s"], keepdims=0)]
    model = _model(nodes, [helper.make_tensor_value_info("a", TP.FLOAT16, [4, 2048]),
                           helper.make_tensor_value_info("b", TP.FLOAT16, [2048, 3])],
                   [helper.make_tensor_value_info(n, TP.FLOAT16, sh)
                    for n, sh in (("y", [4, 3]), ("z", [4, 3]), ("s", []))])
    y, z, s = _speccc(model, [a, b])
    exact = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_array_equal(y, exact.astype(np.float32).astype(np.float16))
    np.testing.assert_allclose(z, 0.5 * exact, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(s, a.astype(np.float64).sum(), rtol=1e-3)


def test_clip_missing_min_keeps_infinities():
    x = np.array([-np.inf, -3, 0, 5, np.inf], dtype=np.float32)
    model = _model([helper.make_node("Clip", ["x", "", "hi"], ["y"])],
                   [helper.make_tensor_value_info("x", TP.FLOAT, [5])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [5])],
                   [helper.make_tensor("hi", TP.FLOAT, [], [2.0])])
    np.testing.assert_array_equal(_speccc(model, [x])[0], [-np.inf, -3, 0, 2, 2])

# --- narrow dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [DType.f8e4m3fn, DType.f8e4m3fnuz, DType.f8e5m2,
                                DType.f8e5m2fnuz, DType.f8e8m0, DType.f4e2m1, DType.i2,
                                DType.u2, DType.i4, DType.u4])
def test_narrow_dtypes_print_parse_and_cast(dt):
    m = Module()
    g = m.new_graph("target")
    x = g.add_argument("x", _t(T, 3))
    y = g.create("cast", [x], {"to": dt})
    g.set_outputs([g.create("cast", [y.result], {"to": DType.f32}).result], ["y"])
    text = print_module(m)
    assert dt.value in text and print_module(parse_module(text)) == text


def test_quantize_dequantize_blocked_int4_roundtrip():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    scale = (np.abs(x).reshape(4, 2, 4).max(-1) / 7).astype(np.float32)
    q = helper.make_node("QuantizeLinear", ["x", "s"], ["q"], axis=1, block_size=4,
                         output_dtype=TP.INT4)
    d = helper.make_node("DequantizeLinear", ["q", "s"], ["y"], axis=1, block_size=4)
    model = _model([q, d], [helper.make_tensor_value_info("x", TP.FLOAT, [4, 8])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [4, 8])],
                   [helper.make_tensor("s", TP.FLOAT, [4, 2], scale.reshape(-1).tolist())])
    (y,) = _speccc(model, [x])
    np.testing.assert_allclose(y, x, atol=float(scale.max()) / 2 + 1e-6)
    np.testing.assert_allclose(y, _ort(model, {"x": x})[0], rtol=1e-6)


@pytest.mark.parametrize("eq,shapes", [
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("Ab,bC->CA", [(3, 4), (4, 2)]),
    ("i...,...i->...", [(3, 2, 5), (2, 5, 3)]),
    ("bij", [(2, 3, 4)]),
])
def test_einsum_ellipsis_and_upper_case(eq, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    names = [f"x{i}" for i in range(len(xs))]
    want = np.einsum(eq, *xs)
    model = _model([helper.make_node("Einsum", names, ["y"], equation=eq)],
                   [helper.make_tensor_value_info(n, TP.FLOAT, list(x.shape))
                    for n, x in zip(names, xs)],
                   [helper.make_tensor_value_info("y", TP.FLOAT, list(want.shape))])
    (got,) = _speccc(model, xs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_softmax_before_13_with_symbolic_dims():
    from speccc.frontend.onnx_import import ImportOptions, import_model
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)],
                   [helper.make_tensor_value_info("x", TP.FLOAT, [2, "T", 8])],
                   [helper.make_tensor_value_info("y", TP.FLOAT, [2, "T", 8])], opset=11)
    g = import_model(model, ImportOptions(shapes_only=True)).graphs["target"]
    assert g.outputs[0].type == _t(2, T, 8)
    assert "softmax" in [op.name for op in g.ops()]


def test_dropout_inference_is_identity_with_true_mask():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for opset, node in ((11, helper.make_node("Dropout", ["x"], ["y", "m"], ratio=0.3)),
                        (13, helper.make_node("Dropout", ["x"], ["y", "m"]))):
        model = _model([node], [helper.make_tensor_value_info("x", TP.FLOAT, [3, 4])],
                       [helper.make_tensor_value_info("y", TP.FLOAT, [3, 4]),
                        helper.make_tensor_value_info("m", TP.BOOL, [3, 4])], opset=opset)
        y, m = _speccc(model, [x])
        np.testing.assert_array_equal(y, x)
        assert m.dtype == np.bool_ and m.all()


def _attention_model():
    node = helper.make_node("Attention", ["q", "k", "v", "", "pk", "pv"],
                            ["y", "present_k", "present_v"], is_causal=1)
    ins = [helper.make_tensor_value_info(n, TP.FLOAT, [1, h, s, 16]) for n, h, s in
           (("q", 4, "T"), ("k", 2, "T"), ("v", 2, "T"), ("pk", 2, "P"), ("pv", 2, "P"))]
    outs = [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4, "T", 16])] + \
        [helper.make_tensor_value_info(n, TP.FLOAT, [1, 2, "S", 16])
         for n in ("present_k", "present_v")]
    return _model([node], ins, outs, opset=23)


def test_attention_expands_with_symbolic_kv_cache():
    from speccc.frontend.onnx_import import ImportOptions, import_model
    model = _attention_model()
    g = import_model(model, ImportOptions(shapes_only=True)).graphs["target"]
    assert [o.type for o in g.outputs] == [_t(1, 4, T, 16), _t(1, 2, P + T, 16),
                                           _t(1, 2, P + T, 16)]
    names = [op.name for op in g.ops()]
    assert names.count("matmul") == 2 and "softmax" in names
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((1, h, s, 16)).astype(np.float32) for n, h, s in
             (("q", 4, 3), ("k", 2, 3), ("v", 2, 3), ("pk", 2, 2), ("pv", 2, 2))}
    got = _speccc(model, feeds)
    try:
        want = _ort(model, feeds)
    except Exception as e:  # an onnxruntime without opset-23 Attention
        pytest.skip(f"onnxruntime: {str(e).splitlines()[0][:120]}")
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

# --- differential checks against onnxruntime -----------------------------------------------

F32, F16, I32, I64 = np.float32, np.float16, np.int32, np.int64
# (op, attrs, input shapes, dtype, opset, constant inputs as (index, array))
DIFF_CASES = [
    ("MatMul", {}, [(2, 3, 4), (4, 5)], F32, 18, []),
    ("MatMul", {}, [(4,), (2, 4, 3)], F16, 18, []),
    ("MatMul", {}, [(3, 1, 2, 4), (5, 4, 2)], I32, 18, []),
    ("MatMul", {}, [(2, 5), (5, 3)], I64, 18, []),
    ("Gemm", {"transA": 1, "alpha": 0.7, "beta": 0.3}, [(4, 3), (4, 5), (5,)], F32, 18, []),
    ("Gemm", {"transB": 1}, [(2, 6), (3, 6), (2, 1)], F16, 18, []),
    ("Softmax", {"axis": 0}, [(3, 4, 5)], F16, 18, []),
    ("LogSoftmax", {"axis": 1}, [(3, 4, 5)], F32, 18, []),
    ("Hardmax", {}, [(3, 7)], F16, 18, []),
    ("ReduceL2", {"keepdims": 0}, [(3, 4, 5)], F32, 18, [(1, np.array([0, 2]))]),
    ("ReduceLogSumExp", {}, [(3, 4, 5)], F16, 18, [(1, np.array([-1]))]),
    ("ReduceProd", {"keepdims": 0}, [(2, 3, 2)], I64, 18, [(1, np.array([1]))]),
    ("ReduceMean", {}, [(2, 8, 64)], F16, 18, [(1, np.array([-1]))]),
    ("ReduceMin", {"keepdims": 0}, [(4, 5)], I32, 18, []),
    ("ArgMin", {"axis": 1, "select_last_index": 1}, [(3, 6)], I32, 13, []),
    ("ArgMax", {"axis": 0, "keepdims": 0}, [(4, 3)], F16, 13, []),
    ("TopK", {"axis": 0, "largest": 0}, [(6, 3)], I64, 11, [(1, np.array([4]))]),
    ("TopK", {}, [(2, 9)], F32, 11, [(1, np.array([3]))]),
    ("CumSum", {"exclusive": 1, "reverse": 1}, [(3, 4)], I64, 14, [(1, np.array(1))]),
    ("LayerNormalization", {"axis": 1}, [(2, 3, 8), (3, 8), (3, 8)], F16, 17, []),
    ("LayerNormalization", {"epsilon": 1e-3}, [(4, 16), (16,)], F32, 17, []),
    ("Einsum", {"equation": "bij,bkj->bik"}, [(2, 3, 4), (2, 5, 4)], F32, 18, []),
    ("QuantizeLinear", {"axis": 1}, [(2, 3, 4), (3,), (3,)], F32, 21, []),
    ("DequantizeLinear", {"axis": 1}, [(2, 3, 4), (3,)], np.int8, 21, []),
    ("InstanceNormalization", {}, [(2, 3, 5), (3,), (3,)], F32, 18, []),
    ("BatchNormalization", {}, [(2, 3, 4), (3,), (3,), (3,), (3,)], F32, 15, []),
    ("LpNormalization", {"axis": 0, "p": 1}, [(3, 4)], F32, 18, []),
]


def _rand(rng, shape, dt):
    if np.dtype(dt).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dt)  # small: ties for arg/topk
    return rng.standard_normal(shape).astype(dt)


@pytest.mark.parametrize("op,attrs,shapes,dt,opset,consts", DIFF_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DIFF_CASES)])
def test_matches_onnxruntime(op, attrs, shapes, dt, opset, consts):
    rng = np.random.default_rng(len(shapes) + len(op))
    ins = [_rand(rng, s, dt) for s in shapes]
    if op == "QuantizeLinear":  # positive f32 scales, i8 zero points
        ins[1] = (np.abs(ins[1]) + 0.05).astype(F32)
        ins[2] = rng.integers(-3, 4, size=shapes[2]).astype(np.int8)
    if op == "DequantizeLinear":
        ins[1] = (np.abs(rng.standard_normal(shapes[1])) + 0.05).astype(F32)
    if op == "BatchNormalization":
        ins[4] = np.abs(ins[4]) + 0.1
    names = [f"i{k}" for k in range(len(ins) + len(consts))]
    const_at = dict(consts)
    inits = [helper.make_tensor(names[i], TP.INT64, a.shape, a.astype(I64).reshape(-1).tolist())
             for i, a in consts]
    feeds = dict(zip([n for k, n in enumerate(names) if k not in const_at], ins))
    n_out = 2 if op == "TopK" else 1
    node = helper.make_node(op, names, [f"o{k}" for k in range(n_out)], **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
          for n, a in feeds.items()]
    model = helper.make_model(helper.make_graph([node], "g", vi, [], inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    # Output types from onnx's own shape inference.
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    model.graph.output.extend(inferred[f"o{k}"] for k in range(n_out))
    want = _ort(model, feeds)
    got = _speccc(model, feeds)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        tol = 2e-3 if w.dtype == np.float16 else 1e-5
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=tol,
                                   atol=tol)
