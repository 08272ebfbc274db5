"""`prepare` hooks (opdefs.OpDef.extra["prepare"]): the forms Plan runs from a shape signature's
second run on, each giving its op's reference results bit for bit
(tests/test_interpreter_prepared.py) with fewer numpy calls: linear as one 2-D np.dot,
layernorm / rmsnorm, attention's softmax and tanh-GELU through the compiled kernels of
compiled.py when numba is installed. A hook returns None where it cannot promise the
bits (other dtypes, rows longer than one pairwise-summation block, masks): the plain
reference then runs.
"""
from __future__ import annotations

import numpy as np

from speccc.ir.opdefs import OPS
from speccc.ir.ops import compiled
from speccc.ir.ops import elementwise  # noqa: F401  (defines gelu, hooked below)
from speccc.ir.ops.llm import _attention_ref, _causal_masked


def _linear_prepare(attrs, values, types):
    """f32 x of rank >= 2: the reference's product (_util.matmul_one_matrix) without its
    checks; a stack of matrices keeps np.matmul (tests/test_interpreter_prepared.py).
    None (the reference) otherwise."""
    x, w = types[0], types[1]
    k, n = x.shape[-1], (w.shape[0] if attrs["transpose_w"] else w.shape[1])
    if x.rank < 2 or not isinstance(k, int) or k == 0 or not isinstance(n, int) \
            or any(t.dtype.numpy != np.float32 for t in types):
        return None
    transpose, has_bias = attrs["transpose_w"], len(types) == 3
    dot, matmul = np.dot, np.matmul

    def linear(ins, attrs):
        x = ins[0]
        w = ins[1].T if transpose else ins[1]
        if x.size == x.shape[-2] * k:
            y = dot(x.reshape(-1, k), w)
            y.shape = x.shape[:-1] + (n,)
        else:
            y = matmul(x, w)
        if has_bias:
            y += ins[2]
        return [y]
    return linear


def _compiled_norm(kernel_name: str, types):
    """The compiled kernel for an f32 norm over a static last axis numpy sums in one
    pairwise block (compiled.py), or None: then the numpy reference runs."""
    if not all(t.dtype.numpy == np.float32 for t in types) or types[0].rank < 1:
        return None
    n = types[0].shape[-1]
    if not isinstance(n, int) or not 0 < n <= compiled.PAIRWISE_BLOCK:
        return None
    built = compiled.kernels()
    return None if built is None else built[kernel_name]


def _layernorm_prepare(attrs, values, types):
    kernel = _compiled_norm("layernorm", types)
    if kernel is None:
        return None
    eps, n, has_bias = np.float32(attrs["eps"]), types[0].shape[-1], len(types) == 3

    def layernorm(ins, attrs):
        x = ins[0]
        bias = ins[2] if has_bias else ins[1]          # unread without a bias
        return [kernel(x.reshape(-1, n), ins[1], bias, eps, has_bias).reshape(x.shape)]
    return layernorm


def _rmsnorm_prepare(attrs, values, types):
    kernel = _compiled_norm("rmsnorm", types)
    if kernel is None:
        return None
    eps, n = np.float32(attrs["eps"]), types[0].shape[-1]

    def rmsnorm(ins, attrs):
        x = ins[0]
        return [kernel(x.reshape(-1, n), ins[1], eps).reshape(x.shape)]
    return rmsnorm


def _attention_prepare(attrs, values, types):
    """f32 q/k/v without an explicit mask or NaN guard: the softmax between the two
    products runs as two compiled passes around numpy's exp (compiled.py), the same
    operations in the same order as `_attention_ref`; None (numpy) otherwise."""
    kernels = compiled.kernels()
    if kernels is None or len(types) != 3 or attrs["nan_to_zero"] \
            or any(t.dtype.numpy != np.float32 for t in types):
        return None
    shift, normalize = kernels["softmax_shift"], kernels["softmax_normalize"]
    scale, causal, window = np.float32(attrs["scale"]), attrs["causal"], attrs["sliding_window"]
    unmasked = np.zeros((1, 1), np.bool_)
    matmul, exp = np.matmul, np.exp

    def attention(ins, attrs):
        q, k, v = ins
        b, heads, t, _ = q.shape
        kv_heads, kv_len = k.shape[1], k.shape[2]
        if not 0 < kv_len <= compiled.PAIRWISE_BLOCK or t == 0:
            return _attention_ref(ins, attrs)
        group = heads // kv_heads
        kt = np.swapaxes(k, -1, -2)
        if group > 1:
            q = q.reshape(b, kv_heads, group, t, q.shape[-1])
            kt, v = kt[:, :, None], v[:, :, None]
        s = matmul(q, kt)
        rows = s.reshape(-1, kv_len)
        shift(rows, scale, _causal_masked(t, kv_len, window) if causal else unmasked,
              causal, t)
        exp(s, out=s)
        normalize(rows)
        out = matmul(s, v)
        if group > 1:
            out = out.reshape(b, heads, t, out.shape[-1])
        return [out]
    return attention


def _gelu_prepare(attrs, values, types):
    """f32 tanh-GELU: the two pointwise passes compiled around numpy's tanh (compiled.py);
    None (numpy) otherwise."""
    kernels = compiled.kernels() if attrs["approximate"] == "tanh" \
        and types[0].dtype.numpy == np.float32 else None
    if kernels is None:
        return None
    inner, outer = kernels["gelu_tanh_inner"], kernels["gelu_tanh_outer"]
    c, k, half = np.float32(np.sqrt(2 / np.pi)), np.float32(0.044715), np.float32(0.5)
    tanh = np.tanh

    def gelu(ins, attrs):
        x = ins[0]
        flat = x.reshape(-1)
        t = inner(flat, c, k)
        tanh(t, out=t)
        return [outer(flat, t, half).reshape(x.shape)]
    return gelu


HOOKS = {"linear": _linear_prepare, "layernorm": _layernorm_prepare,
         "rmsnorm": _rmsnorm_prepare, "attention": _attention_prepare, "gelu": _gelu_prepare}
for _name, _hook in HOOKS.items():
    OPS[_name].extra["prepare"] = _hook
