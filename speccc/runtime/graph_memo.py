"""Objects derived from a graph (prices, Plans) kept while the graph lives: a graph is
not hashable by value, so entries are keyed by id() and dropped once its weakref dies."""
from __future__ import annotations

import weakref

_MEMO: dict = {}   # id(graph) -> (weakref to graph, {key: object})


def memo(graph, key, make):
    """An object derived from `graph` (prices, Plans), reused while the graph lives."""
    ref, per_graph = _MEMO.get(id(graph), (None, None))
    if ref is None or ref() is not graph:
        for k in [k for k, (r, _) in _MEMO.items() if r() is None]:
            del _MEMO[k]
        per_graph = {}
        _MEMO[id(graph)] = (weakref.ref(graph), per_graph)
    if key not in per_graph:
        per_graph[key] = make()
    return per_graph[key]
