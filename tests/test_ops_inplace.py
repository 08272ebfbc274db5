"""The LLM ops' references update temporaries in place and run GQA through a broadcast
axis; these check them bit for bit against the plain formulas they replaced (the
reference executor's results must not move), over dtypes, mask ranks and head groups,
and that no input is modified."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from speccc.ir.opdefs import lookup

DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16, np.float64]


def _run(name, ins, **attrs):
    od = lookup(name)
    before = [a.copy() for a in ins]
    with np.errstate(all="ignore"):
        out = od.ref(ins, od.full_attrs(attrs))
    for a, b in zip(ins, before):
        assert a.tobytes() == b.tobytes(), f"{name} wrote to an input"
    return out


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def _rand(rng, shape, dt, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dt)


def plain_attention(q, k, v, mask, scale, causal, window, nan_to_zero):
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = np.matmul(q.astype(np.float32), np.swapaxes(k.astype(np.float32), -1, -2))
    s = s * np.float32(scale)
    if causal:
        t, n = q.shape[2], k.shape[2]
        pos, key = (n - t + np.arange(t))[:, None], np.arange(n)[None, :]
        allowed = key <= pos
        if window:
            allowed &= key > pos - window
        s = np.where(allowed, s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(axis=-1, keepdims=True)
    if nan_to_zero:
        p = np.where(np.isnan(p), np.float32(0), p)
    return np.matmul(p, v.astype(np.float32)).astype(q.dtype)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (6, 2), (8, 1)])
def test_attention_matches_repeat_form(dt, heads, kv_heads):
    rng = np.random.default_rng(heads * 10 + kv_heads)
    b, t, s, d = 2, 3, 7, 8
    for causal, window in ((False, 0), (True, 0), (True, 2)):
        for mshape in (None, (t, s), (s,), (1, t, s), (heads, t, s), (b, 1, t, s),
                       (b, heads, t, s), (1, heads, t, s)):
            for mdt in ((None,) if mshape is None else (np.bool_, np.float32)):
                q = _rand(rng, (b, heads, t, d), dt)
                k, v = _rand(rng, (b, kv_heads, s, d), dt), _rand(rng, (b, kv_heads, s, d), dt)
                mask = None
                if mshape is not None:
                    keep = rng.random(mshape) > 0.3
                    if mdt is np.bool_:
                        if keep.ndim >= 2:
                            keep[..., 0, :] = False      # a fully masked row: NaN
                        mask = keep
                    else:
                        mask = np.where(keep, 0, -np.inf).astype(np.float32)
                for nan_to_zero in (False, True):
                    ins = [q, k, v] + ([mask] if mask is not None else [])
                    got = _run("attention", ins, scale=0.3, causal=causal,
                               sliding_window=window, nan_to_zero=nan_to_zero)[0]
                    with np.errstate(all="ignore"):
                        want = plain_attention(q, k, v, mask, 0.3, causal, window, nan_to_zero)
                    _same(got, want)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("wdt", [np.float32, np.float16])
def test_norms_match_plain_formulas(dt, wdt):
    rng = np.random.default_rng(1)
    for shape in ((1, 8, 64), (2, 3, 16), (5,)):
        x, w, bias = _rand(rng, shape, dt, 3), _rand(rng, shape[-1:], wdt), _rand(rng, shape[-1:], wdt)
        xf = x.astype(np.float32)
        ms = np.add.reduce(xf * xf, axis=-1, keepdims=True) / np.float32(shape[-1])
        r = np.float32(1.0) / np.sqrt(ms + np.float32(1e-5))
        want = ((xf * r).astype(x.dtype) * w).astype(x.dtype)
        _same(_run("rmsnorm", [x, w], eps=1e-5)[0], want)
        n = np.float32(shape[-1])
        dev = xf - xf.sum(axis=-1, keepdims=True) / n
        var = (dev * dev).sum(axis=-1, keepdims=True) / n
        y = (dev / np.sqrt(var + np.float32(1e-6))).astype(x.dtype) * w
        _same(_run("layernorm", [x, w], eps=1e-6)[0], y.astype(x.dtype))
        _same(_run("layernorm", [x, w, bias], eps=1e-6)[0], (y + bias).astype(x.dtype))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("table", [(1, 1, 8, 16), (8, 16), (1, 4, 8, 16), (2, 1, 8, 16)])
def test_rope_matches_concat_form(dt, table):
    rng = np.random.default_rng(2)
    for tdt in (dt, np.float32):
        x = _rand(rng, (1, 4, 8, 16), dt)
        cos, sin = _rand(rng, table, tdt), _rand(rng, table, tdt)
        rotated = np.concatenate([-x[..., 8:], x[..., :8]], axis=-1)
        _same(_run("rope", [x, cos, sin])[0], (x * cos + rotated * sin).astype(x.dtype))


@pytest.mark.parametrize("dt", DTYPES)
def test_gelu_and_silu_match_plain_formulas(dt):
    rng = np.random.default_rng(3)
    x = _rand(rng, (2, 5, 32), dt, 3)
    xs = x.astype(np.float64 if dt == np.float64 else np.float32)
    half = xs.dtype.type(0.5)
    c, k = xs.dtype.type(np.sqrt(2 / np.pi)), xs.dtype.type(0.044715)
    want = half * xs * (1 + np.tanh(c * (xs + k * (xs * xs * xs))))
    _same(_run("gelu", [x], approximate="tanh")[0], want.astype(dt))
    import scipy.special
    want = half * xs * (1 + scipy.special.erf(xs / xs.dtype.type(np.sqrt(2))).astype(xs.dtype))
    _same(_run("gelu", [x], approximate="none")[0], want.astype(dt))
    w1, w2, wd = _rand(rng, (32, 24), dt), _rand(rng, (32, 24), dt), _rand(rng, (24, 32), dt)
    gate = np.matmul(x, w1).astype(x.dtype).astype(np.float32)
    act = (gate / (1 + np.exp(-gate))).astype(x.dtype)
    h = (act * np.matmul(x, w2).astype(x.dtype)).astype(x.dtype)
    _same(_run("gated_mlp", [x, w1, w2, wd], activation="silu")[0],
          np.matmul(h, wd).astype(x.dtype))
