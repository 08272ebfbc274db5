"""NPU numerics: the op table's reference semantics, GEMMs executed tile by tile.

    outs = run_op(op, [x, w], hw, bindings)

`linear`, `matmul` (2-D or batched, not 1-D operands) and `gated_mlp` run their GEMM
stages as the tiled loop nest the timing model chose and the listing shows (tiles of
tm x tk x tn, fp32 accumulation over the k tiles in order, cast to the result type at
the store), so a tiling that dropped or repeated an index would show up as a wrong
number. Every other op (norms, softmax, rope, elementwise, attention, ...) runs
`speccc.ir.opdefs.lookup(name).ref`, the IR's oracle.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import lookup
from speccc.targets.npu.kernels import Gemm, kernel_for
from speccc.targets.npu.timing import npu_model


def tiled_matmul(a: np.ndarray, w: np.ndarray, tm: int, tk: int, tn: int) -> np.ndarray:
    """C = A @ W over (mi, ni, ki) tiles with fp32 accumulators."""
    m, k = a.shape
    n = w.shape[1]
    out = np.zeros((m, n), np.float32)
    for i in range(0, m, tm):
        for j in range(0, n, tn):
            acc = np.zeros((min(tm, m - i), min(tn, n - j)), np.float32)
            for p in range(0, k, tk):
                acc += a[i:i + tm, p:p + tk].astype(np.float32) @ w[p:p + tk, j:j + tn].astype(np.float32)
            out[i:i + tm, j:j + tn] = acc
    return out


def _tilings(hw, op, bindings) -> list:
    model = npu_model(hw)
    return [model.gemm(s).tiling for s in kernel_for(hw, op, bindings).stages
            if isinstance(s, Gemm)]


def _mm(a, w, t):
    return tiled_matmul(a, w, t.tm, t.tk, t.tn)


def run_op(op, inputs, hw, bindings=None) -> list[np.ndarray]:
    od = lookup(op.name, op.loc)
    attrs = od.full_attrs(op.attrs)
    bindings = dict(bindings or {})
    if op.name == "linear":
        (t,) = _tilings(hw, op, bindings)
        x, w = inputs[0], inputs[1]
        w = w.T if attrs["transpose_w"] else w
        y = _mm(x.reshape(-1, x.shape[-1]), w, t).reshape(*x.shape[:-1], w.shape[1])
        y = y.astype(x.dtype)
        if len(inputs) == 3:
            y = (y + inputs[2]).astype(x.dtype)
        return [y]
    if op.name == "matmul" and inputs[0].ndim >= 2 and inputs[1].ndim >= 2:
        (t,) = _tilings(hw, op, bindings)
        a, w = inputs
        dtype = op.results[0].type.dtype.numpy
        if w.ndim == 2:
            y = _mm(a.reshape(-1, a.shape[-1]), w, t).reshape(*a.shape[:-1], w.shape[1])
            return [y.astype(dtype)]
        batch = np.broadcast_shapes(a.shape[:-2], w.shape[:-2])
        ab = np.broadcast_to(a, batch + a.shape[-2:]).reshape(-1, *a.shape[-2:])
        wb = np.broadcast_to(w, batch + w.shape[-2:]).reshape(-1, *w.shape[-2:])
        y = np.stack([_mm(x, v, t) for x, v in zip(ab, wb)])
        return [y.reshape(*batch, a.shape[-2], w.shape[-1]).astype(dtype)]
    if op.name == "gated_mlp":
        from speccc.ir.ops.llm import ACTIVATIONS
        ts = _tilings(hw, op, bindings)
        x = inputs[0]
        x2 = x.reshape(-1, x.shape[-1])
        if len(inputs) == 4:
            gate, up = _mm(x2, inputs[1], ts[0]), _mm(x2, inputs[2], ts[1])
        else:
            f = inputs[1].shape[1] // 2
            gu = _mm(x2, inputs[1], ts[0])
            gate, up = gu[:, :f], gu[:, f:]
        act = ACTIVATIONS[attrs["activation"]](gate.astype(x.dtype).astype(np.float32))
        h = (act.astype(x.dtype) * up.astype(x.dtype)).astype(x.dtype)
        y = _mm(h, inputs[-1], ts[-1]).astype(x.dtype)
        return [y.reshape(*x.shape[:-1], y.shape[-1])]
    return od.ref(list(inputs), attrs)
