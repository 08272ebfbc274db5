"""`GraphBuilder`: appends ONNX nodes, and the subgraphs a decoder repeats per layer.

Subgraphs are written as PyTorch's exporter writes them (primitives, not fused ops), so the
frontend's fusion passes see realistic patterns.

Parameters vs constants: every *parameter* is a graph initializer, and every initializer is
a parameter; non-parameter constants (shape vectors, axes, eps, rotary inverse
frequencies, mask fill value) are `Constant` nodes and always carry data. So
`sum(prod(init.dims))` is the parameter count.

Shapes-only (`weights=False`): each initializer is a TensorProto with dims and data_type
but no bytes; `data_location=EXTERNAL` and `external_data` = {location: "shapes-only.bin",
offset, length}, offsets packed back to back in declaration order. That file never
exists, so the graph keeps full shapes and costs no memory; anything that tries to read
the data fails loudly instead of computing with zeros. (onnx.checker insists that an
external location be a regular file: use `speccc.zoo.check`, which checks the graph with
the data-less initializers declared as inputs.)

Weights (`weights=True`): parameter `name` is drawn from
`numpy.random.default_rng([seed, crc32(name)])`, so a parameter's values depend only on
(seed, name, shape): models sharing a prefix of layers share those weights exactly.
"""
from __future__ import annotations

import contextlib
import zlib

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPES_ONLY_LOCATION = "shapes-only.bin"
OPSET = 18
IR_VERSION = 10  # opset 18 needs IR >= 8; 10 loads in onnxruntime >= 1.17
INT64_MAX = np.iinfo(np.int64).max

_DTYPES = {"float32": (TensorProto.FLOAT, np.float32), "float16": (TensorProto.FLOAT16, np.float16),
           "bfloat16": (TensorProto.BFLOAT16, ml_dtypes.bfloat16)}



def _finfo(dtype):
    """np.finfo, also for ml_dtypes' bfloat16: numpy's finfo knows it only once ml_dtypes
    >= 0.7 registers it (pyproject allows 0.5-0.6), ml_dtypes.finfo always does."""
    return ml_dtypes.finfo(dtype)

class GraphBuilder:
    def __init__(self, *, dtype: str = "float32", weights: bool = True, seed: int = 0):
        self.elem, self.np_dtype = _DTYPES[dtype]
        self.weights, self.seed = weights, seed
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._scope = ""
        self._ext_offset = 0

    # ---- core -------------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, name: str):
        old, self._scope = self._scope, f"{self._scope}/{name}"
        try:
            yield
        finally:
            self._scope = old

    def op(self, op_type: str, *inputs: str, n_out: int = 1, **attrs):
        """Append one node; return its output name (or list of names if n_out > 1)."""
        self._count += 1
        name = f"{self._scope}/{op_type}_{self._count}"
        outs = [f"{name}_out{i}" if n_out > 1 else f"{name}_out" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs if n_out > 1 else outs[0]

    def rename(self, value: str, new: str) -> str:
        """Give the (not yet consumed) output `value` the graph-visible name `new`."""
        for node in reversed(self.nodes):
            for i, out in enumerate(node.output):
                if out == value:
                    node.output[i] = new
                    return new
        raise KeyError(value)

    def const(self, value, dtype=None) -> str:
        """A Constant node; float values default to the model dtype."""
        arr = np.asarray(value)
        if dtype is None:
            dtype = np.int64 if arr.dtype.kind in "iu" else self.np_dtype
        return self.op("Constant", value=numpy_helper.from_array(arr.astype(dtype)))

    def input(self, name: str, elem: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name: str, elem: int, shape: list) -> str:
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def param(self, name: str, shape: tuple, *, std: float = 0.02, mean: float = 0.0,
              scale: float = 1.0) -> str:
        """Initializer `name` ~ scale * N(mean, std^2) (or shapes-only)."""
        shape = tuple(int(d) for d in shape)
        if not self.weights:
            t = TensorProto(name=name, data_type=self.elem, dims=shape)
            t.data_location = TensorProto.EXTERNAL
            length = int(np.prod(shape)) * np.dtype(self.np_dtype).itemsize
            for k, v in (("location", SHAPES_ONLY_LOCATION),
                         ("offset", str(self._ext_offset)), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = k, v
            self._ext_offset += length
        else:
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            arr = (mean + std * rng.standard_normal(shape)) * scale
            t = numpy_helper.from_array(arr.astype(self.np_dtype), name)
        self.inits.append(t)
        return name

    def model(self, graph_name: str, doc: str = "", metadata: dict | None = None):
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs,
                                  initializer=self.inits, doc_string=doc)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="speccc.zoo",
                              doc_string=doc)
        if metadata:
            helper.set_model_props(m, metadata)
        return m

    # ---- subgraphs --------------------------------------------------------------------
    def to_float(self, x: str) -> str:
        return x if self.elem == TensorProto.FLOAT else self.op("Cast", x, to=TensorProto.FLOAT)

    def to_model_dtype(self, x: str) -> str:
        return x if self.elem == TensorProto.FLOAT else self.op("Cast", x, to=self.elem)

    def linear(self, x: str, name: str, n_in: int, n_out: int, *, bias: bool = False,
               scale: float = 1.0) -> str:
        """x @ W (+ b); W stored [in, out] as exporters emit it."""
        with self.scope(name):
            w = self.param(f"{name}.weight", (n_in, n_out), std=n_in ** -0.5, scale=scale)
            y = self.op("MatMul", x, w)
            if bias:
                y = self.op("Add", y, self.param(f"{name}.bias", (n_out,), scale=scale))
        return y

    def rmsnorm(self, x: str, name: str, dim: int, eps: float, *, gain: float = 1.0) -> str:
        """x * 1/sqrt(mean(x^2) + eps) * w, computed in fp32 like HF LlamaRMSNorm;
        w ~ gain * N(1, 0.1^2)."""
        with self.scope(name):
            w = self.param(f"{name}.weight", (dim,), std=0.1, mean=1.0, scale=gain)
            xf = self.to_float(x)
            ms = self.op("ReduceMean", self.op("Pow", xf, self.const(2.0, np.float32)),
                         self.const([-1]), keepdims=1)
            r = self.op("Reciprocal", self.op("Sqrt", self.op("Add", ms, self.const(eps, np.float32))))
            return self.op("Mul", w, self.to_model_dtype(self.op("Mul", xf, r)))

    def layernorm(self, x: str, name: str, dim: int, eps: float, *, gain: float = 1.0) -> str:
        """LayerNormalization with weight ~ gain * N(1, 0.1^2), bias ~ N(0, 0.02^2)."""
        with self.scope(name):
            w = self.param(f"{name}.weight", (dim,), std=0.1, mean=1.0, scale=gain)
            b = self.param(f"{name}.bias", (dim,))
            return self.op("LayerNormalization", x, w, b, axis=-1, epsilon=eps)

    def gelu_tanh(self, x: str) -> str:
        """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
        with self.scope("gelu"):
            inner = self.op("Add", x, self.op("Mul", self.const(0.044715),
                                               self.op("Pow", x, self.const(3.0))))
            t = self.op("Tanh", self.op("Mul", self.const(np.sqrt(2.0 / np.pi)), inner))
            return self.op("Mul", self.op("Mul", self.const(0.5), x),
                           self.op("Add", self.const(1.0), t))

    def silu(self, x: str) -> str:
        return self.op("Mul", x, self.op("Sigmoid", x))

    def split_heads(self, x: str, n: int, d: int) -> str:
        """[1, T, n*d] -> [1, n, T, d]."""
        return self.op("Transpose", self.op("Reshape", x, self.const([1, -1, n, d])),
                       perm=[0, 2, 1, 3])

    def causal_mask(self, ids: str, past_len: str) -> str:
        """bool [T, P+T]: query i (absolute position P+i) sees keys 0..P+i."""
        with self.scope("causal_mask"):
            t = self.op("Shape", ids, start=1, end=2)
            total = self.op("Squeeze", self.op("Add", past_len, t))
            one = self.const(1)
            q_pos = self.op("Range", self.op("Squeeze", past_len), total, one)
            k_pos = self.op("Range", self.const(0), total, one)
            return self.op("LessOrEqual", self.op("Unsqueeze", k_pos, self.const([0])),
                           self.op("Unsqueeze", q_pos, self.const([1])))

    def rope_tables(self, position_ids: str, head_dim: int, theta: float) -> tuple[str, str]:
        """cos, sin [1, 1, T, head_dim] from position_ids (MatMul with inv_freq, fp32)."""
        with self.scope("rotary_emb"):
            inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
            p = self.op("Unsqueeze", self.op("Cast", position_ids, to=TensorProto.FLOAT),
                        self.const([2]))
            freqs = self.op("MatMul", p, self.const(inv[None, :], np.float32))
            emb = self.op("Concat", freqs, freqs, axis=-1)
            axis = self.const([1])
            return tuple(self.op("Unsqueeze", self.to_model_dtype(self.op(f, emb)), axis)
                         for f in ("Cos", "Sin"))

    def apply_rope(self, x: str, cos: str, sin: str, head_dim: int) -> str:
        """x * cos + rotate_half(x) * sin; rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2])."""
        with self.scope("rope"):
            half, axis = head_dim // 2, self.const([-1])
            x1 = self.op("Slice", x, self.const([0]), self.const([half]), axis)
            x2 = self.op("Slice", x, self.const([half]), self.const([INT64_MAX]), axis)
            rot = self.op("Concat", self.op("Neg", x2), x1, axis=-1)
            return self.op("Add", self.op("Mul", x, cos), self.op("Mul", rot, sin))

    def repeat_kv(self, x: str, n_rep: int, heads: int, head_dim: int) -> str:
        """[1, G, S, D] -> [1, G*n_rep, S, D] (each kv head repeated n_rep times)."""
        if n_rep == 1:
            return x
        with self.scope("repeat_kv"):
            x = self.op("Unsqueeze", x, self.const([2]))
            x = self.op("Expand", x, self.const([1, 1, n_rep, 1, 1]))
            return self.op("Reshape", x, self.const([1, heads, -1, head_dim]))

    def attention(self, q: str, k: str, v: str, mask: str, heads: int, kv_heads: int,
                  head_dim: int) -> str:
        """softmax(q k^T / sqrt(d) masked) v; q [1,H,T,D], k/v [1,G,S,D] -> [1, T, H*D]."""
        with self.scope("sdpa"):
            k = self.repeat_kv(k, heads // kv_heads, heads, head_dim)
            v = self.repeat_kv(v, heads // kv_heads, heads, head_dim)
            s = self.op("MatMul", q, self.op("Transpose", k, perm=[0, 1, 3, 2]))
            s = self.op("Mul", s, self.const(1.0 / np.sqrt(head_dim)))
            s = self.op("Where", mask, s, self.const(_finfo(self.np_dtype).min))
            o = self.op("MatMul", self.op("Softmax", s, axis=-1), v)
            o = self.op("Transpose", o, perm=[0, 2, 1, 3])
            return self.op("Reshape", o, self.const([1, -1, heads * head_dim]))
