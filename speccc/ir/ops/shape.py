"""Shape and data-movement ops: shape/size, reshape, transpose, (un)squeeze, concat,
split, expand, constant_of_shape, range, tile, pad, trilu.

Dims may be symbolic (`Sym`) everywhere. Shape-like operands (reshape's target,
expand's shape, split sizes, range bounds) are compile-time values that may hold Syms
(`sym_dims`); attributes are used for what is always a static int list (perm, axes,
repeats, pads). The reference semantics of the ops that shape subgraphs use (reshape,
unsqueeze, squeeze, concat, transpose, expand) are plain numpy calls that also run on
object arrays of int/Sym, so `Shape -> Gather -> Unsqueeze -> Concat` folds.
"""
from __future__ import annotations

import math

import numpy as np

from speccc.errors import NotConstantError
from speccc.ir.opdefs import Attr, Cost, define, io_bytes
from speccc.ir.ops._util import broadcast_dims, norm_axis
from speccc.ir.types import DType, Sym, TensorType, dim_add, dim_div, dim_mul, dim_prod


def as_dim(x):
    """An entry of a compile-time shape vector as a Dim (int or Sym)."""
    return x if isinstance(x, Sym) else int(x)


def const_dims(ctx, i: int, what: str) -> list:
    """Operand i as a list of Dims; it must be known at compile time (maybe symbolic)."""
    v = ctx.const(i)
    if v is None:
        ctx.fail(f"{what} (operand {i}) must be a compile-time constant (maybe symbolic); "
                 "run 'fold' or bind the inputs", NotConstantError)
    return [as_dim(x) for x in np.asarray(v).reshape(-1)]


def view_cost(ctx, out):
    # Reshape-like ops only relabel a contiguous buffer: no data moves.
    return Cost(0, 0, 0)


def move_cost(ctx, out):
    # Pure data movement: bytes in and out, no arithmetic.
    return Cost(0, *io_bytes(ctx, out))


def dims_str(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


# --- shape / size --------------------------------------------------------------------------


def _shape_infer(ctx):
    rank = ctx.types[0].rank
    n = len(range(rank)[slice(ctx.attr("start"), ctx.attr("end"))])
    return [TensorType((n,), DType.i64)]


define("shape", 1, _shape_infer,
       lambda ins, a: [np.array(ins[0].shape[slice(a["start"], a["end"])], dtype=np.int64)],
       attrs={"start": Attr("int", 0), "end": Attr("any", None)}, cost=view_cost,
       doc="The operand's dims [start:end) as an i64 vector (Python slice clamping).")
define("size", 1, lambda ctx: [TensorType((), DType.i64)],
       lambda ins, a: [np.array(ins[0].size, dtype=np.int64)], cost=view_cost,
       doc="The operand's element count as an i64 scalar.")

# --- reshape -------------------------------------------------------------------------------


def _reshape_infer(ctx):
    x = ctx.types[0]
    target = const_dims(ctx, 1, "target shape")
    out = []
    for i, d in enumerate(target):
        if isinstance(d, int) and d == 0 and not ctx.attr("allowzero"):
            if i >= x.rank:
                ctx.fail(f"target {dims_str(target)}: 0 at {i} copies a dim the "
                         f"rank-{x.rank} operand lacks")
            d = x.shape[i]
        elif isinstance(d, int) and d < -1:
            ctx.fail(f"target {dims_str(target)} has negative dim {d}")
        out.append(d)
    holes = [i for i, d in enumerate(out) if isinstance(d, int) and d == -1]
    total = x.numel()
    if len(holes) > 1:
        ctx.fail(f"target {dims_str(target)} has more than one -1")
    if holes:
        known = dim_prod(d for i, d in enumerate(out) if i != holes[0])
        q = dim_div(total, known) if known != 0 else None
        if q is None:
            ctx.fail(f"cannot infer -1 in {dims_str(target)}: {total} elements is not "
                     f"a multiple of {known}")
        out[holes[0]] = q
    elif dim_prod(out) != total:
        ctx.fail(f"cannot reshape {x} ({total} elements) to {dims_str(out)}")
    return [x.with_shape(out)]


def _reshape_ref(ins, attrs):
    x, target = ins
    shape = np.asarray(target).reshape(-1).tolist()
    if not attrs["allowzero"]:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


def _reshape_bind(attrs, consts, types):
    """A constant target with no 0 to copy (or allowzero): the shape, resolved once."""
    if consts[1] is None:
        return None
    shape = tuple(np.asarray(consts[1]).reshape(-1).tolist())
    if 0 in shape and not attrs["allowzero"]:
        return None
    return lambda ins, a: [ins[0].reshape(shape)]


define("reshape", 2, _reshape_infer, _reshape_ref, attrs={"allowzero": Attr("int", 0)},
       bind=_reshape_bind,
       cost=view_cost, shape_operands=(1,),
       doc="Reshape to operand 1 (ONNX semantics: -1 inferred; 0 copies the input dim "
           "unless allowzero). Symbolic dims infer by exact polynomial division.")

# --- transpose / unsqueeze / squeeze ---------------------------------------------------------


def _transpose_infer(ctx):
    x, perm = ctx.types[0], ctx.attr("perm")
    if sorted(perm) != list(range(x.rank)):
        ctx.fail(f"perm {perm} is not a permutation of rank {x.rank}")
    return [x.with_shape([x.shape[p] for p in perm])]


define("transpose", 1, _transpose_infer,
       lambda ins, a: [np.asarray(ins[0].transpose(a["perm"]), order="C")],
       attrs={"perm": Attr("ints")}, cost=move_cost, doc="Permute dims.")


def _unsqueeze_axes(ctx, rank_out: int) -> list[int]:
    axes = sorted(norm_axis(ctx, a, rank_out) for a in ctx.attr("axes"))
    if len(set(axes)) != len(axes):
        ctx.fail(f"repeated axis in {ctx.attr('axes')}")
    return axes


def _unsqueeze_infer(ctx):
    x = ctx.types[0]
    axes = _unsqueeze_axes(ctx, x.rank + len(ctx.attr("axes")))
    dims = iter(x.shape)
    out = [1 if i in axes else next(dims) for i in range(x.rank + len(axes))]
    return [x.with_shape(out)]


def _unsqueeze_ref(ins, attrs):
    x = ins[0]
    rank = x.ndim + len(attrs["axes"])
    axes = {a % rank for a in attrs["axes"]}
    dims = iter(x.shape)
    return [x.reshape([1 if i in axes else next(dims) for i in range(rank)])]


define("unsqueeze", 1, _unsqueeze_infer, _unsqueeze_ref, attrs={"axes": Attr("ints")},
       cost=view_cost, doc="Insert size-1 dims at `axes` (of the result).")


def _squeeze_infer(ctx):
    x = ctx.types[0]
    axes = {norm_axis(ctx, a, x.rank) for a in ctx.attr("axes")}
    for a in axes:
        if x.shape[a] != 1:
            ctx.fail(f"cannot squeeze axis {a} of {x}: dim is {x.shape[a]}, not 1")
    return [x.with_shape([d for i, d in enumerate(x.shape) if i not in axes])]


define("squeeze", 1, _squeeze_infer,
       lambda ins, a: [np.squeeze(ins[0], tuple(x % max(ins[0].ndim, 1) for x in a["axes"]))],
       attrs={"axes": Attr("ints")}, cost=view_cost, doc="Remove size-1 dims `axes`.")

# --- concat / split ------------------------------------------------------------------------


def _concat_infer(ctx):
    first = ctx.types[0]
    axis = norm_axis(ctx, ctx.attr("axis"), first.rank)
    total = 0
    for t in ctx.types:
        if t.rank != first.rank or t.dtype != first.dtype:
            ctx.fail(f"operands differ in rank or type: {first} vs {t}")
        for i, (a, b) in enumerate(zip(first.shape, t.shape)):
            if i != axis and a != b:
                ctx.fail(f"operands differ in dim {i}: {first} vs {t}")
        total = dim_add(total, t.shape[axis])
    out = list(first.shape)
    out[axis] = total
    return [first.with_shape(out)]


define("concat", (1, None), _concat_infer,
       lambda ins, a: [np.concatenate(ins, axis=a["axis"])],
       attrs={"axis": Attr("int")}, cost=move_cost,
       doc="Join operands along `axis` (KV cache: [P] ++ [T] -> [P+T]).")


def _split_infer(ctx):
    x = ctx.types[0]
    axis = norm_axis(ctx, ctx.attr("axis"), x.rank)
    sizes = const_dims(ctx, 1, "split sizes")
    if any(isinstance(s, int) and s < 0 for s in sizes):
        ctx.fail(f"negative split size in {dims_str(sizes)}")
    if sum(sizes, 0) != x.shape[axis]:
        ctx.fail(f"split sizes {dims_str(sizes)} do not add up to dim {x.shape[axis]}")
    outs = []
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        outs.append(x.with_shape(shape))
    return outs


def _split_ref(ins, attrs):
    x, sizes = ins[0], np.asarray(ins[1]).reshape(-1).tolist()
    lead = (slice(None),) * (attrs["axis"] % x.ndim)
    out, start = [], 0
    for n in sizes:  # views, as np.split returns, without its bookkeeping
        out.append(x[lead + (slice(start, start + n),)])
        start += n
    return out


def _split_bind(attrs, consts, types):
    """Constant sizes: the pieces' index tuples, built once."""
    if consts[1] is None:
        return None
    lead = (slice(None),) * (attrs["axis"] % types[0].rank)
    index, start = [], 0
    for n in np.asarray(consts[1]).reshape(-1).tolist():
        index.append(lead + (slice(start, start + n),))
        start += n
    return lambda ins, a: [ins[0][i] for i in index]


define("split", 2, _split_infer, _split_ref, attrs={"axis": Attr("int", 0)}, bind=_split_bind,
       cost=move_cost, shape_operands=(1,),
       doc="Split along `axis` into pieces of the sizes in operand 1 (one result each).")

# --- expand / constant_of_shape / range / tile ---------------------------------------------


def _expand_infer(ctx):
    x = ctx.types[0]
    shape = broadcast_dims(ctx, [x.shape, tuple(const_dims(ctx, 1, "target shape"))])
    return [x.with_shape(shape)]


def _expand_ref(ins, attrs):
    x, shape = ins[0], [int(d) for d in np.asarray(ins[1]).reshape(-1)]
    return [np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape))))]


define("expand", 2, _expand_infer, _expand_ref, cost=move_cost, shape_operands=(1,),
       doc="Broadcast to operand 1 (bidirectional: target dims of 1 keep the input's).")


def _constant_of_shape_infer(ctx):
    value = ctx.attr("value")
    if value.size != 1:
        ctx.fail(f"value must hold one element, has {value.size}")
    dims = const_dims(ctx, 0, "shape")
    if any(isinstance(d, int) and d < 0 for d in dims):
        ctx.fail(f"negative dim in {dims_str(dims)}")
    return [TensorType(tuple(dims), DType.from_numpy(value.dtype))]


def _constant_of_shape_ref(ins, attrs):
    value = attrs["value"]
    shape = [int(d) for d in np.asarray(ins[0]).reshape(-1)]
    return [np.full(shape, value.reshape(-1)[0], dtype=value.dtype)]


define("constant_of_shape", 1, _constant_of_shape_infer, _constant_of_shape_ref,
       attrs={"value": Attr("tensor")}, shape_operands=(0,),
       cost=lambda ctx, out: Cost(0, 0, out[0].nbytes()),
       doc="A tensor of shape operand 0 filled with the one-element `value`.")


def _range_len(ctx, start, limit, delta):
    if not any(isinstance(v, Sym) for v in (start, limit, delta)):
        if delta == 0:
            ctx.fail("delta is 0")
        return max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    if isinstance(delta, Sym):
        ctx.fail(f"symbolic delta {delta} is not supported")
    # Range(0, T, 1), Range(P, P+T, 1): length (limit-start)/delta, assumed >= 0.
    n = dim_div(limit - start, delta) if delta else None
    if n is None:
        ctx.fail(f"length of range({start}, {limit}, {delta}) is not a polynomial")
    return n


def _range_infer(ctx):
    for i, t in enumerate(ctx.types):
        if t.rank != 0:
            ctx.fail(f"operand {i} must be a scalar, is {t}")
    vals = [ctx.const(i) for i in range(3)]
    if any(v is None for v in vals):
        ctx.fail("start, limit and delta must be compile-time constants (the length is "
                 "data-dependent otherwise)", NotConstantError)
    items = [np.asarray(v).reshape(()).item() for v in vals]
    return [TensorType((_range_len(ctx, *items),), ctx.types[0].dtype)]


def _range_ref(ins, attrs):
    start, limit, delta = (np.asarray(v).reshape(()) for v in ins)
    return [np.arange(start, limit, delta).astype(start.dtype)]


define("range", 3, _range_infer, _range_ref, shape_operands=(0, 1, 2),
       cost=lambda ctx, out: Cost(out[0].numel(), 0, out[0].nbytes()),
       doc="[start, start+delta, ...) below limit; the length may be symbolic (T, P+T).")


def _tile_infer(ctx):
    x, reps = ctx.types[0], ctx.attr("repeats")
    if len(reps) != x.rank or any(r < 0 for r in reps):
        ctx.fail(f"repeats {reps} must be {x.rank} non-negative ints")
    return [x.with_shape([dim_mul(d, r) for d, r in zip(x.shape, reps)])]


define("tile", 1, _tile_infer, lambda ins, a: [np.tile(ins[0], a["repeats"])],
       attrs={"repeats": Attr("ints")}, cost=move_cost, doc="Repeat along each dim.")

# --- pad / trilu ---------------------------------------------------------------------------

PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad_infer(ctx):
    x, pads = ctx.types[0], ctx.attr("pads")
    if len(pads) != 2 * x.rank:
        ctx.fail(f"pads {pads} must have 2*rank = {2 * x.rank} entries")
    if ctx.attr("mode") not in PAD_MODES:
        ctx.fail(f"unknown mode '{ctx.attr('mode')}' (known: {', '.join(PAD_MODES)})")
    if len(ctx.types) > 1 and ctx.types[1].dtype != x.dtype:
        ctx.fail(f"pad value type {ctx.types[1]} differs from the operand's {x}")
    r = x.rank
    return [x.with_shape([dim_add(d, pads[i] + pads[i + r]) for i, d in enumerate(x.shape)])]


def _pad_ref(ins, attrs):
    x, pads, r = ins[0], attrs["pads"], ins[0].ndim
    # Negative pads crop; numpy's pad only grows, so crop first.
    crop = tuple(slice(max(-pads[i], 0), x.shape[i] - max(-pads[i + r], 0)) for i in range(r))
    x = x[crop]
    widths = [(max(pads[i], 0), max(pads[i + r], 0)) for i in range(r)]
    mode = PAD_MODES[attrs["mode"]]
    if mode == "constant":
        value = ins[1].reshape(()) if len(ins) > 1 else np.zeros((), x.dtype)
        return [np.pad(x, widths, mode="constant", constant_values=value).astype(x.dtype)]
    return [np.pad(x, widths, mode=mode)]


define("pad", (1, 2), _pad_infer, _pad_ref,
       attrs={"pads": Attr("ints"), "mode": Attr("str", "constant")}, cost=move_cost,
       doc="Pad (negative: crop) by `pads` = [begin..., end...]; constant mode fills "
           "with the optional scalar operand 1 (default 0).")


def _trilu_ref(ins, attrs):
    x, k = ins[0], attrs["k"]
    return [(np.triu(x, k) if attrs["upper"] else np.tril(x, k)).astype(x.dtype)]


def _trilu_infer(ctx):
    if ctx.types[0].rank < 2:
        ctx.fail(f"operand must have rank >= 2, is {ctx.types[0]}")
    return [ctx.types[0]]


define("trilu", 1, _trilu_infer, _trilu_ref,
       attrs={"upper": Attr("int", 1), "k": Attr("int", 0)}, cost=move_cost,
       doc="Keep the upper (or lower) triangle of the last two dims from diagonal k.")
