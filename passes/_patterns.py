"""A small declarative pattern language over the IR, in the spirit of tinygrad's UPat.

    Op("mul", V("x"), Op("sigmoid", V("x")))     # silu: the same value twice
    Op("matmul", V("x"), W("w"))                # W: a 2-D `weight`
    Opt("cast", V("x"))                          # cast(x) or x itself

A pattern matches a value; captures bind names to values (a repeated name must bind the
same value). `add`/`mul` match in both operand orders. A match is only used when every
value *inside* it (not a capture) has no user outside it, so replacing the root never
duplicates work or creates a cycle. Rules are (pattern, build) pairs in tables; `build`
returns the replacement value or None to decline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from speccc.ir.opdefs import constant_of

COMMUTATIVE = {"add", "mul", "and", "or", "equal", "max", "min", "sum"}


@dataclass
class Match:
    captures: dict = field(default_factory=dict)
    internal: list = field(default_factory=list)  # ops inside the match, root first

    def __getitem__(self, k):
        return self.captures[k]

    def get(self, k, default=None):
        return self.captures.get(k, default)

    def const(self, k):
        return constant_of(self.captures[k])


class Pattern:
    def match(self, value, m: Match):
        """Yield successive Match states (backtracking) that extend m."""
        raise NotImplementedError


@dataclass
class V(Pattern):
    """Any value, captured as `name`."""

    name: str
    pred: Callable | None = None

    def match(self, value, m):
        bound = m.captures.get(self.name)
        if bound is not None:
            if bound is value:
                yield m
            return
        if self.pred is not None and not self.pred(value):
            return
        yield Match({**m.captures, self.name: value}, m.internal)


def W(name: str, rank: int = 2) -> V:
    """A stored weight of the given rank."""
    return V(name, lambda v: v.op is not None and v.op.name == "weight" and v.type.rank == rank)


def C(name: str, pred: Callable[[np.ndarray], bool] = lambda a: True) -> V:
    """A compile-time constant whose value satisfies pred."""
    def ok(v):
        a = constant_of(v)
        return a is not None and a.dtype != object and bool(pred(np.asarray(a)))
    return V(name, ok)


def scalar(value: float, tol: float = 1e-6) -> Callable[[np.ndarray], bool]:
    return lambda a: a.size == 1 and abs(float(a.reshape(-1)[0]) - value) <= tol * max(1, abs(value))


@dataclass
class Op(Pattern):
    """An op by name (or one of a tuple of names), with operand patterns."""

    names: str | tuple
    args: tuple
    name: str | None = None
    attrs: Callable | None = None  # predicate on the op's attrs

    def __init__(self, names, *args, name=None, attrs=None):
        self.names = names if isinstance(names, tuple) else (names,)
        self.args, self.name, self.attrs = args, name, attrs

    def match(self, value, m):
        op = value.op
        if op is None or op.name not in self.names or len(op.operands) != len(self.args):
            return
        if self.attrs is not None and not self.attrs(op.attrs):
            return
        if self.name:
            bound = m.captures.get(self.name)
            if bound is not None and bound is not value:
                return
        orders = [op.operands]
        if op.name in COMMUTATIVE and len(op.operands) == 2:
            orders.append(op.operands[::-1])
        base = Match({**m.captures, **({self.name: value} if self.name else {})},
                     m.internal + [op])
        for operands in orders:
            yield from _match_all(self.args, operands, base)


def _match_all(pats, values, m):
    if not pats:
        yield m
        return
    for m1 in pats[0].match(values[0], m):
        yield from _match_all(pats[1:], values[1:], m1)


@dataclass
class Opt(Pattern):
    """`op(inner)` or `inner` itself (an optional unary wrapper such as a cast)."""

    names: str | tuple
    inner: Pattern

    def match(self, value, m):
        names = self.names if isinstance(self.names, tuple) else (self.names,)
        op = value.op
        if op is not None and op.name in names and len(op.operands) >= 1:
            for m1 in self.inner.match(op.operands[0], Match(m.captures, m.internal + [op])):
                yield m1
        yield from self.inner.match(value, m)


def self_contained(root, m: Match) -> bool:
    """Every value computed inside the match is used only inside it (or is the root)."""
    inside = {id(op) for op in m.internal}
    graph = root.graph
    for op in m.internal:
        for r in op.results:
            if r is root:
                continue
            if graph.is_output(r):
                return False
            if any(id(user) not in inside for user, _ in r.users):
                return False
    return True


@dataclass
class Rule:
    name: str
    pattern: Pattern
    build: Callable  # (graph, root_value, match) -> Value | None


def apply_rules(graph, rules: list[Rule]) -> dict[str, int]:
    """Rewrite greedily, sweeping in topological order until a sweep changes nothing.

    Returns how often each rule fired. Matched ops are erased right away (they are
    self-contained), so a sweep costs one topological sort, not one per rewrite.
    """
    counts: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for op in graph.ops():
            if op.graph is None or len(op.results) != 1:
                continue
            for rule in rules:
                found = _first_build(graph, op.result, rule)
                if found is None:
                    continue
                new, m = found
                graph.replace_all_uses(op.result, new)
                _erase_dead(graph, [op] + m.internal)
                counts[rule.name] = counts.get(rule.name, 0) + 1
                changed = True
                break
    return counts


def _erase_dead(graph, ops) -> None:
    pending = list(ops)
    while pending:
        progress = False
        for op in list(pending):
            if op.graph is None:
                pending.remove(op)
            elif all(not r.users and not graph.is_output(r) for r in op.results):
                graph.erase_op(op)
                pending.remove(op)
                progress = True
        if not progress:
            return


def _first_build(graph, root, rule: Rule):
    for m in rule.pattern.match(root, Match()):
        if not self_contained(root, m):
            continue
        new = rule.build(graph, root, m)
        if new is not None:
            return new, m
    return None
