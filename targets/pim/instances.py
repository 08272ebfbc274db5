"""A listing as numpy arrays: every command instance with its operand values and its
position in program order, and which write each read sees. Used by the vectorised
functional engine (vectorised.py)."""
from __future__ import annotations

import numpy as np

from speccc.targets.pim.isa import OPS
from speccc.targets.pim.listing import Command, Loop

NO_EFFECT = ("ACT", "ACTab", "PRE", "PREab", "PREA", "REF", "SYNC")  # timing only


class Instances:
    """All instances of one command: operand arrays and program-order positions."""
    __slots__ = ("cmd", "kind", "ops", "order", "n")

    def __init__(self, cmd, kind, ops, order):
        self.cmd, self.kind, self.ops, self.order, self.n = cmd, kind, ops, order, len(order)


def commands_in(nodes) -> int:
    """Commands one execution of `nodes` issues (every command counts: positions only
    need to be ordered, not dense)."""
    total = 0
    for node in nodes:
        if isinstance(node, Command):
            total += 1
        elif isinstance(node, Loop):
            total += node.count * commands_in(node.body)
    return total


def expand(nodes, vals: dict, base: np.ndarray, out: list) -> None:
    """Instances of `nodes` executed once per entry of `base` (program-order position of
    each execution's start), loop variables bound per entry in `vals`."""
    n, off = len(base), 0
    for node in nodes:
        if isinstance(node, Command):
            kind = OPS[node.op].kind
            if kind not in NO_EFFECT:
                ops = {}
                for name, a in node.args:
                    if isinstance(a, str):
                        ops[name] = a
                        continue
                    x = np.full(n, a.const, np.int64)
                    for var, c in a.terms:
                        x = x + c * vals[var]
                    ops[name] = x
                out.append(Instances(node, kind, ops, base + off))
            off += 1
        elif isinstance(node, Loop):
            size, m = commands_in(node.body), node.count
            it = np.tile(np.arange(m, dtype=np.int64), n)
            inner = {k: np.repeat(x, m) for k, x in vals.items()}
            if node.var:
                inner[node.var] = it
            expand(node.body, inner, np.repeat(base + off, m) + it * size, out)
            off += m * size


def last_writer(w_key, w_order, r_key, r_order) -> np.ndarray:
    """For each read, the index of the write to the same key that last precedes it in
    program order, or -1 (the value at the listing's start)."""
    nw = len(w_key)
    if not nw or not len(r_key):
        return np.full(len(r_key), -1, np.int64)
    keys = np.concatenate([w_key, r_key])
    order = np.concatenate([w_order, r_order])
    srt = np.lexsort((order, keys))
    idx = np.arange(len(srt))
    is_w = srt < nw
    last = np.maximum.accumulate(np.where(is_w, idx, -1))
    start = np.r_[True, keys[srt][1:] != keys[srt][:-1]]
    seg = np.maximum.accumulate(np.where(start, idx, 0))
    found = np.where(last >= seg, srt[np.maximum(last, 0)], -1)
    out = np.empty(len(r_key), np.int64)
    reads = ~is_w
    out[srt[reads] - nw] = found[reads]
    return out


def last_per_key(key, order) -> np.ndarray:
    """Indices of the last (in program order) entry of every distinct key."""
    if not len(key):
        return np.zeros(0, np.int64)
    srt = np.lexsort((order, key))
    end = np.r_[key[srt][1:] != key[srt][:-1], True]
    return srt[end]


def cat(parts, dtype=np.int64, width: int | None = None) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.zeros((0,) if width is None else (0, width), dtype)
