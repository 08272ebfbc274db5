"""LLM-level ops formed by the `fuse` pass: the units partitioning and lowering work on.

Layouts follow the exporters: activations `[..., hidden]`; attention in head-major
`[B, heads, T, head_dim]`, keys/values `[B, kv_heads, S, head_dim]` with S = P + T.
Each op's reference is written from its definition (not by replaying the pattern it
replaced), so `fuse` is checked against an independent oracle.
"""
from __future__ import annotations

import functools

import numpy as np

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.ops._util import matmul_cost, matmul_one_matrix
from speccc.ir.types import TensorType, dim_add, dim_mul

# --- linear --------------------------------------------------------------------------------


def _linear_infer(ctx):
    x, w = ctx.types[0], ctx.types[1]
    k_w, n = (w.shape[1], w.shape[0]) if ctx.attr("transpose_w") else (w.shape[0], w.shape[1])
    if w.rank != 2:
        ctx.fail(f"weight must be 2-D, got {w}")
    if x.shape[-1] != k_w:
        ctx.fail(f"inner dims differ: x {x} vs weight {w}")
    if len(ctx.types) == 3 and tuple(ctx.types[2].shape) not in ((n,), (1, n)):
        ctx.fail(f"bias {ctx.types[2]} does not match output features {n}")
    return [TensorType(tuple(x.shape[:-1]) + (n,), x.dtype)]


def _linear_ref(ins, attrs):
    x, w = ins[0], ins[1]
    if attrs["transpose_w"]:
        w = w.T
    y = matmul_one_matrix(x, w)
    if len(ins) == 3:
        y += ins[2]
    return [y.astype(x.dtype, copy=False)]


define("linear", (2, 3), _linear_infer, _linear_ref, attrs={"transpose_w": Attr("bool", False)},
       cost=matmul_cost, doc="y = x @ W (+ b); W is [K, N], or [N, K] with transpose_w.")

# --- norms ---------------------------------------------------------------------------------


def _norm_infer(ctx):
    x = ctx.types[0]
    for t in ctx.types[1:]:
        if tuple(t.shape) != (x.shape[-1],):
            ctx.fail(f"scale/bias {t} must be [{x.shape[-1]}]")
    return [x]


def _rmsnorm_ref(ins, attrs):
    x, w = ins
    xf = x.astype(np.float32, copy=False)
    ms = np.add.reduce(xf * xf, axis=-1, keepdims=True)
    # The statistics are [..., 1]: updated in place, the same f32 operations in the
    # same order as `1 / sqrt(ms / n + eps)`.
    ms /= np.float32(x.shape[-1])
    ms += np.float32(attrs["eps"])
    r = np.reciprocal(np.sqrt(ms, out=ms), out=ms)
    y = (xf * r).astype(x.dtype, copy=False)
    if y.dtype == w.dtype and y is not x:
        y *= w                                    # fresh and of x's type: no temporary
        return [y]
    return [(y * w).astype(x.dtype, copy=False)]


def _layernorm_ref(ins, attrs):
    x = ins[0]
    xf = x.astype(np.float32, copy=False)
    n = np.float32(x.shape[-1])
    mean = np.add.reduce(xf, axis=-1, keepdims=True)
    mean /= n
    d = xf - mean
    var = np.add.reduce(d * d, axis=-1, keepdims=True)
    var /= n
    var += np.float32(attrs["eps"])
    d /= np.sqrt(var, out=var)
    # As ONNX LayerNormalization: normalize in f32, cast to x's type, then scale and shift.
    y = d.astype(x.dtype, copy=False)
    scale, bias = ins[1], (ins[2] if len(ins) == 3 else None)
    if scale.dtype == y.dtype and (bias is None or bias.dtype == y.dtype):
        # Same type throughout: in place is the same arithmetic without the temporaries.
        y *= scale
        if bias is not None:
            y += bias
        return [y]
    y = y * scale
    if bias is not None:
        y = y + bias
    return [y.astype(x.dtype)]


def _norm_cost(ctx, out):
    x = ctx.types[0]
    read = x.nbytes()
    for t in ctx.types[1:]:
        read = dim_add(read, t.nbytes())
    return Cost(dim_mul(5, x.numel()), read, out[0].nbytes())


define("rmsnorm", 2, _norm_infer, _rmsnorm_ref, attrs={"eps": Attr("float")}, cost=_norm_cost,
       doc="x / sqrt(mean(x^2, -1) + eps) * w, statistics in f32.")
define("layernorm", (2, 3), _norm_infer, _layernorm_ref, attrs={"eps": Attr("float")},
       cost=_norm_cost, doc="(x - mean) / sqrt(var + eps) * w (+ b) over the last axis, "
       "statistics in f32.")

# --- rotary --------------------------------------------------------------------------------


def _rope_infer(ctx):
    x, cos, sin = ctx.types
    if cos.shape[-1] != x.shape[-1] or sin.shape != cos.shape:
        ctx.fail(f"cos/sin {cos} must end in head_dim {x.shape[-1]}")
    return [x]


def _rope_ref(ins, attrs):
    x, cos, sin = ins
    half = x.shape[-1] // 2
    rotated = np.empty_like(x)
    np.negative(x[..., half:], out=rotated[..., :half])
    rotated[..., half:] = x[..., :half]
    y = x * cos
    if y.dtype == x.dtype == sin.dtype and y.shape == x.shape:
        # sin has cos's shape, so rotated * sin fits in place; the same f32 (or x-type)
        # products and sum as `x * cos + rotated * sin`.
        rotated *= sin
        y += rotated
        return [y]
    return [(y + rotated * sin).astype(x.dtype, copy=False)]


define("rope", 3, _rope_infer, _rope_ref,
       doc="Rotary embedding, rotate-half form: x*cos + concat(-x2, x1)*sin; cos/sin "
           "broadcast to x ([B,1,T,D] against [B,H,T,D]).")

# --- attention -----------------------------------------------------------------------------


def _attention_infer(ctx):
    q, k, v = ctx.types[:3]
    if q.rank != 4 or k.rank != 4 or v.rank != 4:
        ctx.fail("q, k, v must be [B, heads, T, D]")
    heads, kv_heads = q.shape[1], k.shape[1]
    if isinstance(heads, int) and isinstance(kv_heads, int) and heads % kv_heads:
        ctx.fail(f"{heads} query heads do not group over {kv_heads} kv heads")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2] or q.shape[3] != k.shape[3]:
        ctx.fail(f"k {k} / v {v} / q {q} disagree")
    if ctx.attr("sliding_window") < 0 or (ctx.attr("sliding_window") and not ctx.attr("causal")):
        ctx.fail("sliding_window must be >= 0 and needs causal")
    return [TensorType((q.shape[0], heads, q.shape[2], v.shape[3]), q.dtype)]


@functools.lru_cache(maxsize=64)
def _causal_masked(t: int, kv_len: int, window: int) -> np.ndarray:
    """Where a score is masked out. Query i sits at absolute position (kv_len - t + i):
    it sees keys up to there, and with a sliding window w only the last w of them.
    Cached (read-only): the same for every run with these (T, S)."""
    pos, key = (kv_len - t + np.arange(t))[:, None], np.arange(kv_len)[None, :]
    allowed = key <= pos
    if window:
        allowed &= key > pos - window
    masked = ~allowed
    masked.flags.writeable = False
    return masked


def _attention_ref(ins, attrs):
    q, k, v = ins[:3]
    b, heads, t, _ = q.shape
    kv_heads = k.shape[1]
    group = heads // kv_heads
    qf = q.astype(np.float32, copy=False)
    kt = np.swapaxes(k.astype(np.float32, copy=False), -1, -2)
    vf = v.astype(np.float32, copy=False)
    if group > 1:
        # GQA without copying k and v per query head: query heads [g*kv, (g+1)*kv) read kv
        # head g through a broadcast axis. Each head is still one [T, D] x [D, S] product,
        # so the scores are the ones `np.repeat` gave.
        qf = qf.reshape(b, kv_heads, group, t, qf.shape[-1])
        kt, vf = kt[:, :, None], vf[:, :, None]
    s = np.matmul(qf, kt)
    s *= np.float32(attrs["scale"])
    if attrs["causal"]:
        np.copyto(s, -np.inf, where=_causal_masked(t, k.shape[2], attrs["sliding_window"]))
    if len(ins) == 4:
        mask = ins[3]
        if group > 1:
            mask = _grouped(mask, kv_heads, group)
        if mask.dtype == np.bool_:
            np.copyto(s, -np.inf, where=~mask)
        else:
            s = s + mask
    s -= np.maximum.reduce(s, axis=-1, keepdims=True)
    p = np.exp(s, out=s)
    p /= np.add.reduce(p, axis=-1, keepdims=True)
    if attrs["nan_to_zero"]:
        np.copyto(p, np.float32(0), where=np.isnan(p))
    out = np.matmul(p, vf)
    if group > 1:
        out = out.reshape(b, heads, t, out.shape[-1])
    return [out.astype(q.dtype, copy=False)]


def _grouped(mask: np.ndarray, kv_heads: int, group: int) -> np.ndarray:
    """A mask broadcastable to [B, heads, T, S], seen on the grouped [B, kv, group, T, S]
    scores: a per-head mask splits its head axis, a shared one gains a group axis."""
    if mask.ndim <= 2:
        return mask                                   # [T, S] broadcasts as it is
    m = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
    heads = (kv_heads, group) if m.shape[1] != 1 else (1, 1)
    return m.reshape(m.shape[0], *heads, *m.shape[2:])


def _attention_cost(ctx, out):
    q, k, v = ctx.types[:3]
    # Two GEMMs per query head over the whole KV length, plus softmax.
    per_head = dim_mul(q.shape[2], k.shape[2])
    flops = dim_mul(dim_mul(q.shape[0], q.shape[1]),
                    dim_add(dim_mul(per_head, dim_mul(4, q.shape[3])), dim_mul(5, per_head)))
    read = dim_add(dim_add(q.nbytes(), k.nbytes()), v.nbytes())
    return Cost(flops, read, out[0].nbytes())


define("attention", (3, 4), _attention_infer, _attention_ref, cost=_attention_cost,
       attrs={"scale": Attr("float"), "causal": Attr("bool", False),
              "sliding_window": Attr("int", 0), "nan_to_zero": Attr("bool", False)},
       doc="softmax(q kᵀ * scale [+ mask | causal]) v with GQA (kv heads shared by "
           "heads/kv_heads query heads) over past+new keys. A bool mask keeps scores where "
           "true, a float mask is added. sliding_window w (with causal): a query at "
           "position p sees keys p-w < k <= p. nan_to_zero: NaN probabilities (a fully "
           "masked row) become 0, as sdpa's exported `where(isnan(p), 0, p)` guard does.")

# --- gated MLP -----------------------------------------------------------------------------

def _silu(x):
    """x / (1 + exp(-x)), the temporary updated in place."""
    e = np.negative(x)
    np.exp(e, out=e)
    e += 1
    return np.divide(x, e, out=e)


ACTIVATIONS = {
    "silu": _silu,
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
}


def _gate_up(ctx):
    """(gate, up) weight types; the 3-operand form has one [K, 2F] gate|up weight."""
    if len(ctx.types) == 4:
        return ctx.types[1], ctx.types[2]
    w = ctx.types[1]
    f = w.shape[1] // 2 if isinstance(w.shape[1], int) and w.shape[1] % 2 == 0 else None
    if w.rank != 2 or f is None:
        ctx.fail(f"fused gate|up weight {w} must be [K, 2F]")
    half = TensorType((w.shape[0], f), w.dtype)
    return half, half


def _gated_infer(ctx):
    x, wd = ctx.types[0], ctx.types[-1]
    wg, wu = _gate_up(ctx)
    if wg.shape != wu.shape or wg.shape[0] != x.shape[-1] or wd.shape[0] != wg.shape[1]:
        ctx.fail(f"weights {ctx.types[1:]} do not chain from {x}")
    if ctx.attr("activation") not in ACTIVATIONS:
        ctx.fail(f"unknown activation {ctx.attr('activation')!r}")
    return [TensorType(tuple(x.shape[:-1]) + (wd.shape[1],), x.dtype)]


def _gated_ref(ins, attrs):
    x, wd = ins[0], ins[-1]
    if len(ins) == 4:
        gate, up = np.matmul(x, ins[1]), np.matmul(x, ins[2])
    else:
        # One product with the packed [gate | up] weight, split after: slicing the weight
        # first gives strided operands that BLAS copies on every call (~25x slower).
        f = ins[1].shape[1] // 2
        gu = np.matmul(x, ins[1])
        gate, up = gu[..., :f], gu[..., f:]
    gate = gate.astype(x.dtype, copy=False)
    act = ACTIVATIONS[attrs["activation"]](gate.astype(np.float32, copy=False))
    act = act.astype(x.dtype, copy=False)
    h = (act * up.astype(x.dtype, copy=False)).astype(x.dtype, copy=False)
    return [np.matmul(h, wd).astype(x.dtype, copy=False)]


def _gated_cost(ctx, out):
    x, wd = ctx.types[0], ctx.types[-1]
    wg, _ = _gate_up(ctx)
    rows = dim_mul(x.numel(), 1)
    k, f, n = wg.shape[0], wg.shape[1], wd.shape[1]
    from speccc.ir.types import dim_div
    m = dim_div(rows, k) or 1
    flops = dim_mul(2, dim_mul(m, dim_add(dim_mul(2, dim_mul(k, f)), dim_mul(f, n))))
    read = x.nbytes()
    for t in ctx.types[1:]:
        read = dim_add(read, t.nbytes())
    return Cost(flops, read, out[0].nbytes())


define("gated_mlp", (3, 4), _gated_infer, _gated_ref, attrs={"activation": Attr("str", "silu")},
       cost=_gated_cost, doc="down(act(x @ Wg) * (x @ Wu)); weights [K,F], [K,F], [F,N], or "
       "one fused gate|up weight [K,2F] (columns [0,F) gate, [F,2F) up) and [F,N].")
