"""What an IR op becomes on the NPU: a kernel of GEMM and vector stages.

A `Kernel` is a short sequence of stages run one after the other:
- `Gemm`: `batch` independent products C[m,n] = A[m,k] @ W[k,n] on the systolic arrays;
  each operand comes from DRAM or stays in SRAM from the previous stage (`a_in`, `w_in`,
  `c_out`), so a fused kernel (gated MLP, attention) keeps its intermediates on chip when
  they fit.
- `Vector`: an elementwise / row-reduction pass on the vector unit over `rows` rows of
  `row` elements (a tile never splits a row, so norms and softmax reduce on chip), with
  the bytes it reads and writes in DRAM and in SRAM, and its vector-ALU operations.

Shapes come from the op's types with the symbolic dims bound. Element sizes are the IR
dtypes (an f32 weight is streamed as 4 bytes), except MatMulNBits' packed weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from speccc.ir.opdefs import op_cost
from speccc.ir.types import dim_eval

GEMM_OPS = ("linear", "matmul", "gemm", "gated_mlp", "attention", "matmul_nbits")
ACC_BYTES = 4          # fp32 accumulators / scores
# vector-ALU operations per element for the fused activations (exp, add, reciprocal,
# multiplies); the op table's flops count only the GEMMs of these ops
ACT_OPS = {"silu": 5, "gelu_tanh": 9}


@dataclass(frozen=True)
class Gemm:
    label: str
    batch: int
    m: int
    k: int
    n: int
    ea: float            # bytes per element of A, W, C
    ew: float
    ec: float
    a_in: str = "dram"   # "dram" or "sram"
    w_in: str = "dram"
    c_out: str = "dram"

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.k * self.n


@dataclass(frozen=True)
class Vector:
    label: str
    rows: int
    row: int             # elements per row (output)
    ops: int             # vector-ALU operations in total
    dram_in: float       # bytes read from DRAM / SRAM, written to DRAM / SRAM
    sram_in: float = 0.0
    dram_out: float = 0.0
    sram_out: float = 0.0


@dataclass(frozen=True)
class Kernel:
    op: str
    stages: tuple
    signature: str = ""  # operand and result types, for listings


def _shape(t, b) -> tuple[int, ...]:
    out = []
    for d in t.shape:
        v = dim_eval(d, b)
        if not isinstance(v, int):
            from speccc.errors import SpecccError
            raise SpecccError(f"NPU kernel needs bound symbols: {v} (pass --bind)")
        out.append(v)
    return tuple(out)


def _es(t) -> float:
    """Bytes per element of a tensor type (fractional for packed 4-bit types)."""
    return t.dtype.itemsize_bits / 8


def _nbytes(t, b) -> float:
    return math.prod(_shape(t, b)) * _es(t)


def _num(x, b) -> float:
    return float(dim_eval(x, b))


def _is_weight(v) -> bool:
    return v.op is not None and v.op.name in ("weight", "const")


def _fits(hw, nbytes: float, frac: float = 0.25) -> bool:
    return nbytes <= hw.npu.sram_bytes * frac


def kernel_for(hw, op, bindings) -> Kernel:
    """The NPU kernel of `op` with its symbols bound by `bindings`."""
    b = dict(bindings)
    ts = [v.type for v in op.operands]
    sig = ", ".join(str(t.bind(b)) for t in ts) + " -> " + ", ".join(
        str(r.type.bind(b)) for r in op.results)
    build = _BUILDERS.get(op.name, _vector_default)
    return Kernel(op.name, tuple(build(hw, op, b)), sig)


def _with_bias(hw, gemm: Gemm, bias_t, b) -> list:
    """GEMM then `+ bias` on the vector unit; the product stays in SRAM when it fits."""
    rows, n = gemm.batch * gemm.m, gemm.n
    acc = rows * n * ACC_BYTES
    on_chip = _fits(hw, acc)
    g = Gemm(**{**gemm.__dict__, "ec": ACC_BYTES, "c_out": "sram" if on_chip else "dram"})
    return [g, Vector("+ bias", rows, n, rows * n,
                      _nbytes(bias_t, b) + (0.0 if on_chip else acc),
                      sram_in=acc if on_chip else 0.0, dram_out=rows * n * gemm.ec)]


def _linear(hw, op, b):
    x, w = op.operands[0].type, op.operands[1].type
    xs, ws = _shape(x, b), _shape(w, b)
    k, n = (ws[1], ws[0]) if op.attrs.get("transpose_w") else ws
    m = math.prod(xs[:-1])
    ec = _es(op.results[0].type)
    g = Gemm("x @ W", 1, m, k, n, _es(x), _es(w), ec)
    return _with_bias(hw, g, op.operands[2].type, b) if len(op.operands) == 3 else [g]


def _matmul(hw, op, b):
    a, w = op.operands[0].type, op.operands[1].type
    as_, ws = list(_shape(a, b)), list(_shape(w, b))
    if op.name == "gemm":
        if op.attrs.get("trans_a"):
            as_ = as_[::-1]
        if op.attrs.get("trans_b"):
            ws = ws[::-1]
    as_ = [1] + as_ if len(as_) == 1 else as_
    ws = ws + [1] if len(ws) == 1 else ws
    ec = _es(op.results[0].type)
    if len(ws) == 2:      # one matrix shared by every row of A: fold A's batch into m
        m, batch = math.prod(as_[:-1]), 1
    else:
        m, batch = as_[-2], math.prod(_shape(op.results[0].type, b)[:-2])
    k, n = as_[-1], ws[-1]
    g = Gemm("A @ B", batch, m, k, n, _es(a), _es(w), ec)
    if op.name == "gemm" and len(op.operands) == 3:
        return _with_bias(hw, g, op.operands[2].type, b)
    return [g]


def _nbits(hw, op, b):
    a = op.operands[0].type
    k, n = op.attrs["K"], op.attrs["N"]
    m = math.prod(_shape(a, b)[:-1])
    wbytes = sum(_nbytes(v.type, b) for v in op.operands[1:])
    ec = _es(op.results[0].type)
    # codes + scales stream in; the vector unit expands them to 16-bit for the arrays
    deq = Vector("dequantize W", k, n, 2 * k * n, wbytes, sram_out=2 * k * n)
    return [deq, Gemm("A @ dequant(B).T", 1, m, k, n, _es(a), 2, ec, w_in="sram")]


def _gated(hw, op, b):
    x = op.operands[0].type
    xs = _shape(x, b)
    m, k = math.prod(xs[:-1]), xs[-1]
    ws = [_shape(v.type, b) for v in op.operands[1:]]
    f, n = ws[-1]
    ew = _es(op.operands[1].type)
    ea = ec = _es(x)
    on_chip = _fits(hw, m * f * (2 * ACC_BYTES + ea))
    mid = "sram" if on_chip else "dram"
    if len(op.operands) == 3:
        ups = [Gemm("x @ [Wg|Wu]", 1, m, k, 2 * f, ea, ew, ACC_BYTES, c_out=mid)]
    else:
        ups = [Gemm("x @ Wg", 1, m, k, f, ea, ew, ACC_BYTES, c_out=mid),
               Gemm("x @ Wu", 1, m, k, f, ea, ew, ACC_BYTES, c_out=mid)]
    act = ACT_OPS.get(op.attrs.get("activation", "silu"), 5) + 1
    gbytes, hbytes = 2 * m * f * ACC_BYTES, m * f * ea
    mix = Vector(f"{op.attrs.get('activation', 'silu')}(g) * u", m, f, act * m * f,
                 0.0 if on_chip else gbytes, sram_in=gbytes if on_chip else 0.0,
                 dram_out=0.0 if on_chip else hbytes, sram_out=hbytes if on_chip else 0.0)
    down = Gemm("h @ Wd", 1, m, f, n, ea, ew, ec, a_in=mid)
    return [*ups, mix, down]


def _attention(hw, op, b):
    q, kt, vt = (v.type for v in op.operands[:3])
    B, H, T, D = _shape(q, b)
    _, KVH, S, Dv = _shape(vt, b)
    g = H // KVH
    m, batch = g * T, B * KVH
    e = _es(q)
    on_chip = _fits(hw, m * S * (2 * ACC_BYTES + e))
    mid = "sram" if on_chip else "dram"
    score = Gemm("q @ kT", batch, m, D, S, e, _es(kt), ACC_BYTES, c_out=mid)
    sbytes = batch * m * S * ACC_BYTES
    mask = _nbytes(op.operands[3].type, b) if len(op.operands) == 4 else 0
    soft = Vector("softmax", batch * m, S, 5 * batch * m * S,
                  mask + (0.0 if on_chip else sbytes), sram_in=sbytes if on_chip else 0.0,
                  dram_out=0.0 if on_chip else batch * m * S * e,
                  sram_out=batch * m * S * e if on_chip else 0.0)
    ctx = Gemm("p @ V", batch, m, S, Dv, e, _es(vt), _es(op.results[0].type),
               a_in=mid)
    return [score, soft, ctx]


def _gather(hw, op, b):
    out = op.results[0].type
    s = _shape(out, b)
    nbytes = _nbytes(out, b)
    idx = _nbytes(op.operands[1].type, b) if len(op.operands) > 1 else 0
    return [Vector("gather rows", math.prod(s[:-1]) if s else 1, s[-1] if s else 1, 0,
                   nbytes + idx, dram_out=nbytes)]


def _vector_default(hw, op, b):
    c = op_cost(op)
    out = op.results[0].type
    s = _shape(out, b) or (1,)
    src = _shape(op.operands[0].type, b) if op.operands else s
    row = (src or (1,))[-1]
    rows = max(1, math.prod(src or (1,)) // max(row, 1))
    return [Vector(op.name, rows, row, int(_num(c.flops, b)), _num(c.bytes_read, b),
                   dram_out=_num(c.bytes_written, b))]


_BUILDERS = {"linear": _linear, "matmul": _matmul, "gemm": _matmul, "matmul_nbits": _nbits,
             "gated_mlp": _gated, "attention": _attention, "gather": _gather}
