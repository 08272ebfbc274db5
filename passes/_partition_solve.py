"""Solvers for the two-device partition problem (used by passes/partition.py).

Problem: nodes (groups of ops that go together) with a latency on each device
(0 = NPU, 1 = PIM; `inf` = cannot run there), some fixed to a device, and values: a
producer node, its consumer nodes and the time to move the value between the devices.
A value crosses at most once per step however many consumers sit on the other device.

    total(assign) = sum_v cost[v][assign[v]]
                  + sum_values w * [some consumer is on the other device than the producer]

- `mincut`: exact. s-t minimum cut (networkx) with s = NPU, t = PIM, edge s->v of
  capacity cost_pim(v), v->t of capacity cost_npu(v), and per value two auxiliary nodes
  (u -> a [w], a -> c [inf] for NPU->PIM; c -> b [inf], b -> u [w] for PIM->NPU), so a
  value is charged once whatever its fan-out. Capacities are integers in picoseconds.
- `dp`: exact dynamic programme over a topological order whose state is, for every live
  value, its producer's device and whether it was already copied to the other device;
  when the state set exceeds `max_states` the cheapest are kept (then `exact` is false).
- `greedy`: each node in topological order takes the device with the smaller own cost
  plus transfers from already-placed producers.
Every solver returns the best of its answer and the two uniform assignments (all NPU,
all PIM) that respect the fixed nodes, so no policy is ever slower than both baselines
under its own model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

INF = float("inf")


@dataclass
class Problem:
    cost: list[tuple[float, float]]
    fixed: list[int | None]
    values: list[tuple[int, tuple[int, ...], float]]   # (producer, consumers, w)
    order: list[int] = field(default_factory=list)     # a topological order of nodes

    @property
    def n(self) -> int:
        return len(self.cost)

    def allowed(self, v: int) -> tuple[int, ...]:
        if self.fixed[v] is not None:
            return (self.fixed[v],)
        return tuple(d for d in (0, 1) if self.cost[v][d] < INF) or (0, 1)


@dataclass
class Solution:
    assign: list[int]
    total: float
    exact: bool


def evaluate(p: Problem, assign) -> float:
    t = sum(p.cost[v][assign[v]] for v in range(p.n))
    for u, cs, w in p.values:
        if any(assign[c] != assign[u] for c in cs):
            t += w
    return t


def _uniform(p: Problem, d: int) -> list[int]:
    return [p.fixed[v] if p.fixed[v] is not None else d for v in range(p.n)]


def _best(p: Problem, assign, exact: bool) -> Solution:
    cands = [(evaluate(p, a), i, a) for i, a in enumerate([assign, _uniform(p, 0), _uniform(p, 1)])]
    total, _, a = min(cands, key=lambda c: (c[0], c[1]))
    return Solution(list(a), total, exact)


def solve_greedy(p: Problem) -> Solution:
    assign: list[int | None] = [None] * p.n
    incoming: dict[int, list[int]] = {v: [] for v in range(p.n)}
    for i, (u, cs, w) in enumerate(p.values):
        for c in set(cs):
            incoming[c].append(i)
    sent: set[tuple[int, int]] = set()
    for v in p.order:
        def price(d):
            extra = sum(p.values[i][2] for i in incoming[v]
                        if assign[p.values[i][0]] != d and (i, d) not in sent)
            return p.cost[v][d] + extra
        d = min(p.allowed(v), key=lambda d: (price(d), d))
        assign[v] = d
        sent |= {(i, d) for i in incoming[v] if assign[p.values[i][0]] != d}
    return _best(p, assign, False)


def solve_mincut(p: Problem) -> Solution:
    g = nx.DiGraph()
    s, t = "s", "t"
    g.add_nodes_from([s, t])
    ps = lambda x: int(round(x * 1000))   # noqa: E731  (ns -> ps, integer capacities)
    for v in range(p.n):
        g.add_node(v)
        allowed = p.allowed(v)
        if allowed == (0,):
            g.add_edge(s, v)                 # no capacity = infinite: v stays on the NPU
        elif allowed == (1,):
            g.add_edge(v, t)
        else:
            g.add_edge(s, v, capacity=ps(p.cost[v][1]))
            g.add_edge(v, t, capacity=ps(p.cost[v][0]))
    for i, (u, cs, w) in enumerate(p.values):
        a, b = ("a", i), ("b", i)
        g.add_edge(u, a, capacity=ps(w))
        g.add_edge(b, u, capacity=ps(w))
        for c in set(cs):
            g.add_edge(a, c)
            g.add_edge(c, b)
    _, (side_s, _) = nx.minimum_cut(g, s, t)
    return _best(p, [0 if v in side_s else 1 for v in range(p.n)], True)


def solve_dp(p: Problem, max_states: int = 20000) -> Solution:
    pos = {v: i for i, v in enumerate(p.order)}
    consumes: dict[int, list[int]] = {v: [] for v in range(p.n)}
    produces: dict[int, list[int]] = {v: [] for v in range(p.n)}
    last: dict[int, int] = {}
    for i, (u, cs, w) in enumerate(p.values):
        produces[u].append(i)
        for c in set(cs):
            consumes[c].append(i)
        last[i] = max(pos[c] for c in cs)
    # state: tuple of (value, producer device, copied) sorted by value -> (cost, trail)
    states: dict[tuple, tuple[float, tuple | None]] = {(): (0.0, None)}
    exact = True
    for v in p.order:
        nxt: dict[tuple, tuple[float, tuple | None]] = {}
        for key, (cost, trail) in states.items():
            live = dict((i, (d, c)) for i, d, c in key)
            for d in p.allowed(v):
                total = cost + p.cost[v][d]
                new = dict(live)
                for i in consumes[v]:
                    pd, copied = new[i]
                    if pd != d and not copied:
                        total += p.values[i][2]
                        new[i] = (pd, True)
                    if last[i] == pos[v]:
                        del new[i]
                for i in produces[v]:
                    new[i] = (d, False)
                k = tuple(sorted((i, a, b) for i, (a, b) in new.items()))
                if k not in nxt or total < nxt[k][0]:
                    nxt[k] = (total, (v, d, trail))
        if len(nxt) > max_states:
            exact = False
            nxt = dict(sorted(nxt.items(), key=lambda kv: kv[1][0])[:max_states])
        states = nxt
    _, trail = min(states.values(), key=lambda s: s[0])
    assign = [0] * p.n
    while trail is not None:
        v, d, trail = trail
        assign[v] = d
    return _best(p, assign, exact)


SOLVERS = {"greedy": solve_greedy, "mincut": solve_mincut, "dp": solve_dp}
