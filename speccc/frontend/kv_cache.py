"""Recognize KV-cache inputs/outputs by structure, not by name.

A KV pair is a graph input `past` and a graph output `present` where present is
`concat(..., past', new, ...)` along some axis and past' is `past` itself or past
through shape-preserving ops (cast, identity). The pairs are recorded on the graph as
`kv_cache = [[past_arg, present_output, axis], ...]` so later passes (placement,
speculation's rollback) know which tensors are caches and along which axis they grow.
"""
from __future__ import annotations

from speccc.ir.core import Graph, Value

PASS_THROUGH = {"cast", "identity"}


def _root_argument(v: Value):
    while v.op is not None and v.op.name in PASS_THROUGH:
        v = v.op.operands[0]
    return v if v.op is None else None


def find_kv_pairs(g: Graph) -> list[list]:
    pairs = []
    for name, out in zip(g.output_names, g.outputs):
        op = out.op
        while op is not None and op.name in PASS_THROUGH:
            op = op.operands[0].op
        if op is None or op.name != "concat":
            continue
        for v in op.operands:
            arg = _root_argument(v)
            if arg is not None:
                pairs.append([arg.name, name, int(op.attrs["axis"]) % out.type.rank])
                break
    return pairs


def record_kv_cache(g: Graph) -> None:
    pairs = find_kv_pairs(g)
    if pairs:
        g.attrs["kv_cache"] = pairs
    else:
        g.attrs.pop("kv_cache", None)
