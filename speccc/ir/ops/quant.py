"""Quantization: (de)quantize_linear, dynamic_quantize_linear, integer matmuls and the
block-quantized weight matmul (`matmul_nbits`, ONNX Runtime's com.microsoft.MatMulNBits).

Scales/zero points are per tensor (scalar or one element), per axis (1-D along `axis`)
or blocked (same rank as x, `block_size` consecutive elements along `axis` share one).
Float8/float4 values carry no zero point (ONNX requires it to be zero): it is ignored.
"""
from __future__ import annotations

import weakref
import numpy as np

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.ops._util import matmul_cost, matmul_one_matrix, norm_axis
from speccc.ir.ops.nn import matmul_shape, pointwise_cost
from speccc.ir.types import DType, TensorType, dim_add, dim_mul

# Narrow float targets: no zero point; the f8 ones saturate on request.
_F8 = (DType.f8e4m3fn, DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz)
_NO_ZERO_POINT = _F8 + (DType.f4e2m1,)
QUANT_TYPES = (DType.u8, DType.i8, DType.u16, DType.i16, DType.u4, DType.i4, DType.u2,
               DType.i2, DType.i32) + _NO_ZERO_POINT


def _check_param(ctx, x, p, axis: int, block: int, what: str) -> None:
    """p (scale or zero point) must be per-tensor, per-axis or blocked for x."""
    if p.rank == 0 or p.shape == (1,):
        return
    if not block:
        if p.rank != 1 or p.shape[0] != x.shape[axis]:
            ctx.fail(f"{what} {p} is not per-axis for axis {axis} of {x}")
        return
    want = tuple(d if i != axis else None for i, d in enumerate(x.shape))
    got = tuple(d if i != axis else None for i, d in enumerate(p.shape))
    n = x.shape[axis]
    if p.rank != x.rank or got != want or (isinstance(n, int) and isinstance(p.shape[axis], int)
                                           and p.shape[axis] != -(-n // block)):
        ctx.fail(f"{what} {p} is not blocked by {block} along axis {axis} of {x}")


def expand_param(p: np.ndarray, shape: tuple, axis: int, block: int) -> np.ndarray:
    """Broadcastable per-element view of a scale/zero point (ONNX reshape_input)."""
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    if not block:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def _quant_axis(ctx):
    x = ctx.types[0]
    for i, what in ((1, "scale"), (2, "zero point")):
        p = ctx.types[i] if i < len(ctx.types) else None
        # `axis` only means something (and must be valid) for per-axis/blocked params.
        if p is not None and not (p.rank == 0 or p.shape == (1,)):
            axis = norm_axis(ctx, ctx.attr("axis"), x.rank)
            _check_param(ctx, x, p, axis, ctx.attr("block_size"), what)
    return x


def _dequant_infer(ctx):
    x = _quant_axis(ctx)
    if len(ctx.types) == 3 and ctx.types[2].dtype != x.dtype:
        ctx.fail(f"zero point type {ctx.types[2].dtype.value} != {x.dtype.value}")
    return [x.with_dtype(ctx.attr("to"))]


def _dequant_ref(ins, attrs):
    x, scale = ins[0], ins[1]
    axis = attrs["axis"] % max(x.ndim, 1)  # used only by per-axis/blocked params
    blk = attrs["block_size"]
    # As ONNX: subtract the zero point in f32, multiply by the scale (numpy promotion).
    dx = x.astype(np.float32)
    if len(ins) == 3 and DType.from_numpy(x.dtype) not in _NO_ZERO_POINT:
        dx = dx - expand_param(ins[2], x.shape, axis, blk).astype(np.float32)
    y = dx * expand_param(scale, x.shape, axis, blk)
    return [y.astype(attrs["to"].numpy)]


_QATTRS = {"axis": Attr("int", 1), "block_size": Attr("int", 0)}

# Two flops per element: subtract the zero point, multiply by the scale (and the reverse).
define("dequantize_linear", (2, 3), _dequant_infer, _dequant_ref, cost=pointwise_cost(2),
       attrs={**_QATTRS, "to": Attr("dtype")},
       doc="(x - zero_point) * scale -> `to`; per tensor, per axis or blocked.")


def _quant_infer(ctx):
    x = _quant_axis(ctx)
    to = ctx.attr("to")
    if to not in QUANT_TYPES:
        ctx.fail(f"cannot quantize to {to.value}")
    if len(ctx.types) == 3 and ctx.types[2].dtype != to:
        ctx.fail(f"zero point type {ctx.types[2].dtype.value} != {to.value}")
    return [x.with_dtype(to)]


def _quant_ref(ins, attrs):
    import ml_dtypes  # imported where used: keeps start-up light
    x, to_t = ins[0], attrs["to"]
    axis = attrs["axis"] % max(x.ndim, 1)
    blk = attrs["block_size"]
    to = to_t.numpy
    zp = expand_param(ins[2], x.shape, axis, blk) if len(ins) == 3 else None
    with np.errstate(all="ignore"):
        v = x / expand_param(ins[1], x.shape, axis, blk)  # in x's type, as ONNX
        if to_t in _F8:
            if attrs["saturate"]:
                info = ml_dtypes.finfo(to)
                v = np.clip(v, float(info.min), float(info.max))
            return [np.asarray(v).astype(to)]
        if to_t == DType.f4e2m1:  # no inf/nan encoding: the cast saturates by itself
            return [np.asarray(v if zp is None else v + zp).astype(to)]
        # Integers: round half to even, add the zero point, saturate to the type's range.
        q = np.rint(v).astype(np.float64)
        if zp is not None:
            q = q + zp.astype(np.float64)
        info = ml_dtypes.iinfo(to)
        return [np.clip(q, int(info.min), int(info.max)).astype(to)]


define("quantize_linear", (2, 3), _quant_infer, _quant_ref, cost=pointwise_cost(3),
       attrs={**_QATTRS, "to": Attr("dtype"), "saturate": Attr("bool", True)},
       doc="saturate(round(x / scale) + zero_point) as `to` (float8: scaled cast, "
           "saturating unless saturate=false).")


def _dyn_infer(ctx):
    x = ctx.types[0]
    return [x.with_dtype(DType.u8), TensorType((), x.dtype), TensorType((), DType.u8)]


def _dyn_ref(ins, attrs):
    x = ins[0]
    f32 = np.float32
    hi = f32(max(0, np.max(x))) if x.size else f32(0)
    lo = f32(min(0, np.min(x))) if x.size else f32(0)
    # The range always includes 0 so that 0 quantizes exactly.
    scale = f32(1.0 if hi == lo else hi - lo) / f32(255)
    zp = np.rint(np.clip(f32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255)
    return [y.astype(np.uint8), np.array(scale).astype(x.dtype), np.array(zp).astype(np.uint8)]


define("dynamic_quantize_linear", 1, _dyn_infer, _dyn_ref, cost=pointwise_cost(5),
       doc="u8-quantize x with scale/zero point from its own min/max (range incl. 0); "
           "returns (y, scale, zero_point).")

# --- integer matmuls -----------------------------------------------------------------------


def _row_param(p: np.ndarray) -> np.ndarray:
    # A's per-row parameters (length M) apply along rows: make them a column.
    return p.reshape(-1, 1) if p.ndim == 1 and p.size > 1 else p


def _matmul_integer_infer(ctx):
    a, b = ctx.types[:2]
    return [TensorType(matmul_shape(ctx, a.shape, b.shape), DType.i32)]


def _matmul_integer_ref(ins, attrs):
    a, b, za, zb = ins
    a32 = a.astype(np.int32) - _row_param(za).astype(np.int32)
    b32 = b.astype(np.int32) - zb.astype(np.int32)
    return [np.matmul(a32, b32).astype(np.int32)]


define("matmul_integer", 4, _matmul_integer_infer, _matmul_integer_ref, cost=matmul_cost,
       doc="(a - a_zp) @ (b - b_zp) accumulated in i32; a_zp per tensor or per row, b_zp "
           "per tensor or per column.")


def _qlinear_infer(ctx):
    a, b, yzp = ctx.types[0], ctx.types[3], ctx.types[7]
    return [TensorType(matmul_shape(ctx, a.shape, b.shape), yzp.dtype)]


def _qlinear_ref(ins, attrs):
    a, sa, za, b, sb, zb, sy, zy = ins
    c = np.matmul(a.astype(np.int32) - _row_param(za).astype(np.int32),
                  b.astype(np.int32) - zb.astype(np.int32))
    # Requantize: the combined multiplier is formed in the scales' type, as ONNX does.
    m = (_row_param(sa) * sb / sy).astype(np.float64)
    d = np.rint(c.astype(np.float64) * m + zy.astype(np.float64))
    info = np.iinfo(zy.dtype)
    return [np.clip(d, info.min, info.max).astype(zy.dtype)]


def _qlinear_cost(ctx, out):
    a = ctx.types[0]
    read = 0
    for t in ctx.types:
        read = dim_add(read, t.nbytes())
    k = a.shape[-1] if a.rank else 1
    return Cost(dim_mul(2, dim_mul(out[0].numel(), k)), read, out[0].nbytes())


define("qlinear_matmul", 8, _qlinear_infer, _qlinear_ref, cost=_qlinear_cost,
       doc="Quantized matmul: operands (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp); "
           "integer product requantized to y's scale and zero point.")

# --- block-quantized weights (MatMulNBits) -------------------------------------------------


def unpack_bits(data: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Unsigned `bits`-wide codes packed low-bit first in the last axis of u8 `data`;
    returns the first `count` codes per row (any bits in 1..8)."""
    if bits in (4, 8):  # fast path for the common widths: shifts, no bit matrix
        codes = data if bits == 8 else np.stack([data & 15, data >> 4], -1).reshape(
            data.shape[:-1] + (-1,))
        return codes[..., :count].astype(np.int32)
    flat = np.unpackbits(data, axis=-1, bitorder="little")
    n = flat.shape[-1] // bits
    codes = flat[..., :n * bits].reshape(flat.shape[:-1] + (n, bits))
    weights = (1 << np.arange(bits)).astype(np.uint16)
    return (codes.astype(np.uint16) @ weights)[..., :count].astype(np.int32)


def nbits_dequant(b, scales, zero_points, g_idx, attrs) -> np.ndarray:
    """The [N, K] f32 weight of a matmul_nbits: (code - zero_point) * scale per block."""
    k, n, bits, blk = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
    nblocks = -(-k // blk)
    q = unpack_bits(b.reshape(n, -1), bits, nblocks * blk)[:, :k]
    s = scales.reshape(n, nblocks).astype(np.float32)
    if zero_points is None:
        zp = np.full((n, nblocks), 1 << (bits - 1), dtype=np.float32)
    elif zero_points.dtype == np.uint8:
        zp = unpack_bits(zero_points.reshape(n, -1), bits, nblocks).astype(np.float32)
    else:
        zp = zero_points.reshape(n, nblocks).astype(np.float32)
    if g_idx is None and k % blk == 0:  # whole blocks: broadcast instead of gathering
        q = q.reshape(n, nblocks, blk).astype(np.float32)
        return ((q - zp[..., None]) * s[..., None]).reshape(n, k)
    group = np.arange(k) // blk if g_idx is None else g_idx.astype(np.int64)
    return (q - zp[:, group]) * s[:, group]


def _nbits_infer(ctx):
    a, b, s = ctx.types[:3]
    k, n, bits, blk = (ctx.attr(x) for x in ("K", "N", "bits", "block_size"))
    if not 1 <= bits <= 8 or blk < 1:
        ctx.fail(f"bits={bits} must be in 1..8 and block_size={blk} positive")
    nblocks = -(-k // blk)
    if a.rank < 1 or a.shape[-1] != k:
        ctx.fail(f"A {a} must end in K={k}")
    if b.dtype != DType.u8 or tuple(b.shape) != (n, nblocks, blk * bits // 8):
        ctx.fail(f"B {b} must be u8 [{n}, {nblocks}, {blk * bits // 8}]")
    if s.numel() != n * nblocks or s.dtype != a.dtype:
        ctx.fail(f"scales {s} must hold N*k_blocks={n * nblocks} {a.dtype.value} values")
    if len(ctx.types) > 3:
        z = ctx.types[3]
        packed = n * (-(-nblocks * bits // 8))
        if z.numel() != (packed if z.dtype == DType.u8 else n * nblocks):
            ctx.fail(f"zero points {z} do not match N={n}, k_blocks={nblocks}")
    if len(ctx.types) > 4 and tuple(ctx.types[4].shape) != (k,):
        ctx.fail(f"g_idx {ctx.types[4]} must be [{k}]")
    return [TensorType(tuple(a.shape[:-1]) + (n,), a.dtype)]


# Dequantized weights of constant operands, keyed by the operand arrays' identities: the
# interpreter hands the same weight arrays to every run, so a decode loop unpacks each
# weight once instead of once per token. Weak references check the arrays are still the
# ones the entry was made from (an id can be reused after an array dies).
_DEQUANT_CACHE: dict = {}


def _cached_dequant(ops: list, attrs) -> np.ndarray:
    arrays = [x for x in ops if x is not None]
    key = tuple(id(x) if x is not None else None for x in ops) + tuple(sorted(attrs.items()))
    hit = _DEQUANT_CACHE.get(key)
    if hit is not None and all(r() is x for r, x in zip(hit[0], arrays)):
        return hit[1]
    w = nbits_dequant(*ops, attrs)
    for k in [k for k, (rs, _) in _DEQUANT_CACHE.items() if any(r() is None for r in rs)]:
        del _DEQUANT_CACHE[k]
    _DEQUANT_CACHE[key] = (tuple(weakref.ref(x) for x in arrays), w)
    return w


def _nbits_ref(ins, attrs):
    a = ins[0]
    ops = [ins[1], ins[2], ins[3] if len(ins) > 3 else None, ins[4] if len(ins) > 4 else None]
    w = _cached_dequant(ops, attrs)
    return [matmul_one_matrix(a.astype(np.float32), w.T).astype(a.dtype)]


def _nbits_cost(ctx, out):
    # 2*M*N*K multiply-adds plus one dequantize (sub, mul) per weight element; the
    # bytes read are the packed weights, which is the point of the op.
    mn = out[0].numel()  # M*N
    flops = dim_add(dim_mul(2, dim_mul(mn, ctx.attr("K"))), 2 * ctx.attr("K") * ctx.attr("N"))
    read = 0
    for t in ctx.types:
        read = dim_add(read, t.nbytes())
    return Cost(flops, read, out[0].nbytes())


define("matmul_nbits", (3, 5), _nbits_infer, _nbits_ref, cost=_nbits_cost,
       attrs={"K": Attr("int"), "N": Attr("int"), "bits": Attr("int", 4),
              "block_size": Attr("int"), "accuracy_level": Attr("int", 0)},
       doc="A @ dequant(B).T with B [N, k_blocks, blob] u8 codes packed low-bit first "
           "along K, per-block scales and zero points (u8 packed like B, or float; "
           "default 2^(bits-1)), optional g_idx (block of each k).")
