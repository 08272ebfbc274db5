"""A small declarative pattern language over the IR, in the spirit of tinygrad's UPat.

    Op("mul", V("x"), Op("sigmoid", V("x")))     # silu: the same value twice
    Op("matmul", V("x"), W("w"))                # W: a 2-D `weight`
    Opt("cast", V("x"))                          # cast(x) or x itself
    Alt(Op("mul", V("q"), C("s")), V("q"))       # the first alternative that matches
    Check(Op("reshape", V("x"), V("s")), pred)   # pred(value, match) must hold
    Op("split", V("x"), V("n"), result=1)        # the second result of a split

A pattern matches a value; captures bind names to values (a repeated name must bind the
same value). `add`/`mul` match in both operand orders. A match is only used when every
value *inside* it (not a capture) has no user outside it, so replacing the root never
duplicates work or creates a cycle. Rules are (pattern, build) pairs in tables; `build`
returns the replacement value or None to decline. A rule's root may be the first result of
a multi-result op whose other results are unused (layer_norm's mean and 1/std).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from speccc.ir.opdefs import constant_of
from speccc.ir.types import is_float_dtype

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
    """An op by name (or one of a tuple of names), with operand patterns; the value must
    be the op's result number `result`."""

    names: str | tuple
    args: tuple
    name: str | None = None
    attrs: Callable | None = None  # predicate on the op's attrs
    result: int = 0

    def __init__(self, names, *args, name=None, attrs=None, result=0):
        self.names = names if isinstance(names, tuple) else (names,)
        self.args, self.name, self.attrs, self.result = args, name, attrs, result

    def match(self, value, m):
        op = value.op
        if op is None or op.name not in self.names or len(op.operands) != len(self.args):
            return
        if value.index != self.result:
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


class Alt(Pattern):
    """Alternatives, tried in order (backtracking into later ones)."""

    def __init__(self, *alts: Pattern):
        self.alts = alts

    def match(self, value, m):
        for alt in self.alts:
            yield from alt.match(value, m)


@dataclass
class Check(Pattern):
    """`inner`, where pred(value, match) holds (shape conditions a pattern cannot spell)."""

    inner: Pattern
    pred: Callable

    def match(self, value, m):
        for m1 in self.inner.match(value, m):
            if self.pred(value, m1):
                yield m1


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
    by_name = _RulesByRootName(rules)
    changed = True
    while changed:
        changed = False
        for op in graph.ops():
            candidates = by_name[op.name]
            if not candidates or op.graph is None or not op.results or any(
                    r.users or graph.is_output(r) for r in op.results[1:]):
                continue
            root = op.results[0]
            for rule in candidates:
                found = _first_build(graph, root, rule)
                if found is None:
                    continue
                new, m = found
                graph.replace_all_uses(root, new)
                _erase_dead(graph, [op] + m.internal)
                counts[rule.name] = counts.get(rule.name, 0) + 1
                changed = True
                break
    return counts


def root_names(p: Pattern) -> frozenset | None:
    """The op names a pattern's root can have; None when any value may match (a bare V)."""
    if isinstance(p, Op):
        return frozenset(p.names)
    if isinstance(p, Check):
        return root_names(p.inner)
    if isinstance(p, Opt):
        inner = root_names(p.inner)
        names = p.names if isinstance(p.names, tuple) else (p.names,)
        return None if inner is None else inner | frozenset(names)
    if isinstance(p, Alt):
        alts = [root_names(a) for a in p.alts]
        return None if any(a is None for a in alts) else frozenset().union(*alts)
    return None


class _RulesByRootName(dict):
    """op name -> the rules whose root can be that op, in table order: the fuse worklist
    tries only those (most ops match no rule at all), and rewrites in the same order."""

    def __init__(self, rules: list[Rule]):
        super().__init__()
        self._rules = [(r, root_names(r.pattern)) for r in rules]

    def __missing__(self, name: str) -> list[Rule]:
        found = self[name] = [r for r, names in self._rules if names is None or name in names]
        return found


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


# --- helpers for build functions ---------------------------------------------------------------


def make(graph, root, name, operands, attrs=None):
    """A new op at the root's location; its (single) result."""
    return graph.create(name, operands, attrs or {}, loc=root.op.loc).result


def shortest(a) -> float:
    """A scalar constant as the shortest float that round-trips in its own dtype."""
    a = np.asarray(a).reshape(-1)
    return float(str(a[0])) if is_float_dtype(a.dtype) else float(a[0])


def same_shape(a, b) -> bool:
    return tuple(a.type.shape) == tuple(b.type.shape)


def scalar_factor(value, m) -> bool:
    """A Check predicate for `mul(x, C)`: the constant is one number (any float) and the
    product has x's shape (no broadcast up), so it commutes with reshape/transpose/matmul."""
    op = value.op
    xs = [v for v in op.operands if constant_of(v) is None]
    cs = [constant_of(v) for v in op.operands if constant_of(v) is not None]
    return (len(xs) == 1 and len(cs) == 1 and np.asarray(cs[0]).size == 1
            and is_float_dtype(np.asarray(cs[0]).dtype) and same_shape(value, xs[0]))
