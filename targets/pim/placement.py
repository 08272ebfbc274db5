"""PIM placement: PIM ops' weights and KV cache mapped to channels, banks and rows.

    place_module(module, hw, PlaceRequest(bindings, max_context, split))

(PimTarget.place; the `place` pass asks every target.) Every op whose device is PIM
(`device = "pim"`, or by default linear, attention, gated_mlp, matmul_nbits; see
speccc.costmodel.default_device; matmul with a stored 2-D weight when assigned) gets
`pim_base_row`, `pim_rows` and `pim_channels` (its channel window), and attention also
`pim_max_context`. Within an op, regions stack from pim_base_row in codegen's
`op_layouts` order: linear/matmul_nbits W; gated_mlp [gate; up] then down; attention
keys then values (kv_layout.py, room to append up to max_context tokens), once per
request of a bound batch; matmul like linear. GEMV matrices use layout.plan_matrix (all-bank MACs stream whole rows). PIM
elementwise ops hold no data and get no placement (under a split: their graph's window).

Allocation: one row cursor per channel, shared by every graph of the module (a draft
and a target share the device); an op takes the contiguous window of channels it needs
whose highest cursor is lowest (first such window on ties) and all of its rows in each,
so no two ops overlap. Deterministic. Capacity: when the highest cursor exceeds the
preset's rows per bank, one error gives the rows needed per bank vs available and the
bytes placed (and the weight + KV bytes as 16-bit words) vs capacity.

Channel split (SpecPIM: draft and target on disjoint channel sets): `split=GRAPH:N`
gives graph @GRAPH channels [0, N) and every other graph channels [N, channels).
"""
from __future__ import annotations

import dataclasses

from speccc.costmodel import default_device
from speccc.errors import CapacityError, SpecccError
from speccc.ir.types import dim_eval
from speccc.targets.pim.op_layout import (PLACED_OPS, PLACEMENT_ATTRS, attention_requests,
                                          op_dims, op_layouts, unsupported_reason)

# operands of each placed op that the banks hold (must come from stored weights)
WEIGHT_OPERANDS = {"linear": [1], "matmul": [1], "matmul_nbits": [1, 2, 3, 4]}


def weight_operands(op) -> list[int]:
    if op.name == "gated_mlp":                    # every weight: gate, up (or gate|up), down
        return list(range(1, len(op.operands)))
    return WEIGHT_OPERANDS.get(op.name, [])


def _shapes(op, bindings) -> list:
    """Operand shapes with bound dims as ints and unbound ones as None."""
    return [tuple(d if isinstance(d, int) else None
                  for d in (dim_eval(x, bindings) for x in v.type.shape)) for v in op.operands]


def _need(value, what: str, op) -> int:
    if value is None:
        raise SpecccError(f"place: {op.name} needs a number for its {what}; pass "
                          "bind=T=..:P=.. (--bind) or max_context=N", location=op.where())
    return value


def _static(value, memo: dict) -> bool:
    """Computed from weights/constants only (could be stored in banks)?"""
    op = value.op
    if op is None:
        return False
    key = id(op)
    if key not in memo:
        memo[key] = op.name in ("weight", "const") or (
            bool(op.operands) and all(_static(v, memo) for v in op.operands))
    return memo[key]


class RowAllocator:
    def __init__(self, hw):
        self.hw = hw
        self.next = [0] * hw.pim.channels
        self.placed_bytes = 0

    def take(self, nch: int, rows: int, lo: int = 0, hi: int | None = None
             ) -> tuple[int, list[int]]:
        """A window of nch channels within [lo, hi) (default: all channels)."""
        p = self.hw.pim
        hi = p.channels if hi is None else hi
        nch = max(1, min(nch, hi - lo))
        best = min(range(lo, hi - nch + 1), key=lambda c0: (max(self.next[c0:c0 + nch]), c0))
        base = max(self.next[best:best + nch])
        for c in range(best, best + nch):
            self.next[c] = base + rows
        self.placed_bytes += rows * nch * p.banks_per_channel * p.row_bytes
        return base, list(range(best, best + nch))

    @property
    def high(self) -> int:
        return max(self.next)


def channel_ranges(split: str, names: list[str], nch: int, hw=None) -> dict:
    """{graph name: (lo, hi)} of the channels each graph may use. `split=GRAPH:N` gives
    GRAPH channels [0, N); `split=GRAPH:GROUP` the preset's channel group GROUP (first
    or last in the preset); the other graphs get the rest."""
    if not split:
        return {n: (0, nch) for n in names}
    name, sep, count = split.rpartition(":")
    groups = {g.name: g for g in hw.pim.groups} if hw is not None else {}
    if sep and name in names and count in groups:
        g = groups[count]
        if g.lo != 0 and g.hi != nch:
            raise SpecccError(f"place: split={split}: group {count} (channels {g.lo}..{g.hi - 1})"
                              " is in the middle; the other graphs need one contiguous rest")
        rest = (g.hi, nch) if g.lo == 0 else (0, g.lo)
        return {x: (g.lo, g.hi) if x == name else rest for x in names}
    if not sep or not name or not count.strip().isdigit():
        have = f" or GRAPH:GROUP (groups: {', '.join(groups)})" if groups else ""
        raise SpecccError(f"place: split expects GRAPH:N (e.g. split=draft:4){have}, got '{split}'")
    n = int(count)
    if name not in names:
        raise SpecccError(f"place: split names graph @{name} but the module has "
                          f"{', '.join('@' + x for x in names)}")
    if not 0 < n < nch:
        raise SpecccError(f"place: split={split}: @{name} needs 1 to {nch - 1} "
                          f"channels (the preset has {nch}, the other graphs the rest)")
    return {x: (0, n) if x == name else (n, nch) for x in names}


def place_module(module, hw, request) -> None:
    """Place every PIM op of every graph of `module` (see the module docstring)."""
    ranges = channel_ranges(request.split, [g.name for g in module], hw.pim.channels, hw)
    alloc = RowAllocator(hw)
    # regions are sized without the rows limit, so capacity is checked once, in total
    sizing = dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, rows=1 << 40))
    payload = 0
    for g in module:
        memo: dict = {}
        for op in g.ops():
            for a in PLACEMENT_ATTRS:
                op.attrs.pop(a, None)
            if default_device(op) != "pim":
                continue
            why = unsupported_reason(op.name, op.attrs, [v.type.shape for v in op.operands])
            if why:
                raise SpecccError(f"place: {why}; assign it to the npu", location=op.where())
            if op.name not in PLACED_OPS:
                # no bank data: it may use any channel of its graph's window
                lo, hi = ranges[g.name]
                if (lo, hi) != (0, hw.pim.channels):
                    op.attrs["pim_channels"] = list(range(lo, hi))
                continue
            payload += place_op(op, sizing, request, alloc, memo, ranges[g.name])
    if alloc.high > hw.pim.rows:
        cap = hw.derived()["capacity_bytes"]
        raise CapacityError(
            f"place: the model does not fit {hw.label}: it needs {alloc.high} rows per bank "
            f"but the preset has {hw.pim.rows} ({alloc.placed_bytes / 2**30:.2f} GiB placed, "
            f"{payload / 2**30:.2f} GiB of weights and KV cache as 16-bit words, vs "
            f"{cap / 2**30:.2f} GiB capacity); use a larger --hw preset, a smaller "
            "max_context, or keep some ops off PIM")


def place_op(op, sizing, request, alloc: RowAllocator, memo: dict,
             chans: tuple[int, int]) -> int:
    """Give one op its rows and channel window; returns its payload bytes."""
    shapes = _shapes(op, request.bindings)
    dims = op_dims(op.name, op.attrs, shapes)
    for i in weight_operands(op):
        if i < len(op.operands) and not _static(op.operands[i], memo):
            raise SpecccError(f"place: {op.name} operand {i} is computed from graph inputs; "
                              "PIM banks hold stored weights only (assign it to the npu)",
                              location=op.where())
    ctx = None
    for key, v in dims.items():
        if key not in ("B", "T", "S"):
            _need(v, f"dimension {key}", op)
    if op.name == "attention":
        ctx = request.max_context or _need(dims["S"], "KV length (max_context)", op)
        if dims["S"] is not None and dims["S"] > ctx:
            raise SpecccError(f"place: attention over {dims['S']} keys exceeds "
                              f"max_context={ctx}", location=op.where())
    lo, hi = chans
    regions = op_layouts(op.name, sizing, dims, max_context=ctx, window=range(lo, hi))
    rows = sum(r.rows for r in regions)
    base, window = alloc.take(max(r.channels for r in regions), rows, lo, hi)
    op.attrs["pim_base_row"] = base
    op.attrs["pim_rows"] = rows
    op.attrs["pim_channels"] = window
    if ctx is not None:
        op.attrs["pim_max_context"] = ctx
        return 2 * 2 * dims["G"] * dims["D"] * ctx * attention_requests(dims)
    if op.name == "gated_mlp":
        return 2 * dims["K"] * dims["F"] * 2 + 2 * dims["F"] * dims["N"]
    return 2 * dims["M"] * dims["K"]
