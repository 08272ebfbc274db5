"""Graph IR: values, operations, graphs and modules.

A graph's source of truth is a `networkx.MultiDiGraph`. Its nodes are producers: every
`Op` and one `Argument` per graph input. An edge producer -> consumer has key = the
consumer's operand index and data `res` = the producer's result index, so use-def chains,
topological order and subgraph matching are networkx queries. Passes use the typed API
here (`graph.ops()`, `op.operands`, `value.users`, `graph.replace_all_uses`, ...), which
keeps the networkx edges and the operand lists in step; nobody pokes at raw dicts.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import networkx as nx
import numpy as np

from speccc.ir.types import TensorType

_ids = itertools.count()


class Value:
    """An SSA value: result `index` of `producer` (an Op or an Argument)."""

    __slots__ = ("producer", "index", "type", "name")

    def __init__(self, producer, index: int, type: TensorType, name: str | None = None):
        self.producer, self.index, self.type, self.name = producer, index, type, name

    @property
    def op(self) -> "Op | None":
        return self.producer if isinstance(self.producer, Op) else None

    @property
    def graph(self) -> "Graph":
        return self.producer.graph

    @property
    def users(self) -> list[tuple["Op", int]]:
        """(op, operand index) pairs that read this value, in deterministic order."""
        g = self.graph.nx
        out = [(dst, key) for _, dst, key, d in g.out_edges(self.producer, keys=True, data=True)
               if d["res"] == self.index]
        return sorted(out, key=lambda u: (u[0].uid, u[1]))

    def __repr__(self) -> str:
        return f"Value({self.name or '?'}: {self.type})"


class Argument:
    """Graph input: a producer node with one result and no operands."""

    def __init__(self, graph: "Graph", name: str, type: TensorType):
        self.uid = next(_ids)
        self.graph = graph
        self.result = Value(self, 0, type, name)

    @property
    def results(self) -> list[Value]:
        return [self.result]


class Op:
    """An operation: `name` from the op table, operands, attributes, results."""

    def __init__(self, name: str, operands: list[Value], attrs: dict[str, Any],
                 result_types: list[TensorType], loc: str | None = None):
        self.uid = next(_ids)
        self.name = name
        self.attrs = dict(attrs)
        self.loc = loc  # where it came from: ONNX node name or IR line, for errors
        self._operands = list(operands)
        self.results = [Value(self, i, t) for i, t in enumerate(result_types)]
        self.graph: Graph | None = None

    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    @property
    def result(self) -> Value:
        if len(self.results) != 1:
            raise ValueError(f"{self.name} has {len(self.results)} results")
        return self.results[0]

    def set_operand(self, index: int, value: Value) -> None:
        g = self.graph
        old = self._operands[index]
        self._operands[index] = value
        if g is not None:
            g.nx.remove_edge(old.producer, self, key=index)
            g.nx.add_edge(value.producer, self, key=index, res=value.index)
            g._order = None

    def where(self) -> str:
        return self.loc or self.name

    def __repr__(self) -> str:
        return f"Op({self.name}#{self.uid})"


@dataclass
class Graph:
    """A named dataflow graph with inputs, ordered outputs (with names) and attributes."""

    name: str
    nx: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    arguments: list[Argument] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    module: "Module | None" = None
    # `ops()` order, cached: every edit through this API drops it (the graph is only
    # edited through it), so passes may call ops() freely instead of re-sorting.
    _order: tuple | None = field(default=None, repr=False, compare=False)

    # -- construction -------------------------------------------------------------------
    def add_argument(self, name: str, type: TensorType) -> Value:
        arg = Argument(self, name, type)
        self.arguments.append(arg)
        self.nx.add_node(arg)
        self._order = None
        return arg.result

    @property
    def inputs(self) -> list[Value]:
        return [a.result for a in self.arguments]

    def add_op(self, op: Op) -> Op:
        op.graph = self
        self._order = None
        self.nx.add_node(op)
        for i, v in enumerate(op._operands):
            if v.graph is not self:
                raise ValueError(f"{op.where()}: operand {i} belongs to another graph")
            self.nx.add_edge(v.producer, op, key=i, res=v.index)
        return op

    def create(self, name: str, operands: Iterable[Value], attrs: Mapping | None = None,
               result_types: list[TensorType] | None = None, loc: str | None = None) -> Op:
        """Create an op; result types are inferred from the op table when not given."""
        from speccc.ir.opdefs import infer_types  # op table sits above core
        operands = list(operands)
        attrs = dict(attrs or {})
        if result_types is None:
            result_types = infer_types(name, [v.type for v in operands], attrs, operands, loc)
        return self.add_op(Op(name, operands, attrs, result_types, loc))

    def set_outputs(self, values: list[Value], names: list[str]) -> None:
        self.outputs, self.output_names = list(values), list(names)

    # -- queries --------------------------------------------------------------------------
    def ops(self) -> list[Op]:
        """Ops in a deterministic topological order (creation order breaks ties)."""
        if self._order is None:
            order = nx.lexicographical_topological_sort(self.nx, key=lambda n: n.uid)
            self._order = tuple(n for n in order if isinstance(n, Op))
        return list(self._order)

    def __len__(self) -> int:
        return self.nx.number_of_nodes() - len(self.arguments)

    def users(self, value: Value) -> list[tuple[Op, int]]:
        return value.users

    def is_output(self, value: Value) -> bool:
        return any(v is value for v in self.outputs)

    # -- rewriting ------------------------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> None:
        for user, idx in old.users:
            user.set_operand(idx, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def erase_op(self, op: Op) -> None:
        for r in op.results:
            if r.users or self.is_output(r):
                raise ValueError(f"{op.where()}: cannot erase, result still used")
        self.nx.remove_node(op)
        self._order = None
        op.graph = None

    def rewrite(self, old: Op, new_results: list[Value]) -> None:
        """Replace every use of `old`'s results with `new_results`, then erase `old`."""
        for r, n in zip(old.results, new_results, strict=True):
            self.replace_all_uses(r, n)
        self.erase_op(old)

    def replace_op(self, old: Op, name: str, attrs: Mapping) -> Op:
        """Replace `old` by an op `name` with the same operands, result types and
        location, taking `old`'s place in the deterministic order (lowering)."""
        new = Op(name, list(old.operands), dict(attrs), [r.type for r in old.results], old.loc)
        new.uid = old.uid
        self.add_op(new)
        self.rewrite(old, new.results)
        return new

    def remove_dead(self) -> int:
        """Erase ops whose results are unused and not outputs; returns how many."""
        removed = 0
        for op in reversed(self.ops()):
            if all(not r.users and not self.is_output(r) for r in op.results):
                self.erase_op(op)
                removed += 1
        return removed


class WeightStore:
    """Weight tensors by name, loaded on first use (npz, ONNX external data) or absent.

    Loaders are callables returning an ndarray, so a 70B model imports without reading
    a byte; a shapes-only model has no loaders at all.
    """

    def __init__(self) -> None:
        self._data: dict[str, np.ndarray] = {}
        self._loaders: dict[str, Any] = {}

    def put(self, name: str, array: np.ndarray) -> None:
        self._data[name] = array
        self._loaders.pop(name, None)

    def put_lazy(self, name: str, loader) -> None:
        self._loaders[name] = loader

    def has(self, name: str) -> bool:
        return name in self._data or name in self._loaders

    def is_loaded(self, name: str) -> bool:
        """Whether the bytes of `name` have been read (lazy weights start unloaded)."""
        return name in self._data

    def get(self, name: str) -> np.ndarray:
        if name not in self._data:
            if name not in self._loaders:
                raise KeyError(name)
            self._data[name] = self._loaders.pop(name)()
        return self._data[name]

    def names(self) -> list[str]:
        return sorted(set(self._data) | set(self._loaders))

    def save_npz(self, path) -> None:
        np.savez(path, **{n: self.get(n) for n in self.names()})

    @staticmethod
    def load_npz(path) -> "WeightStore":
        store = WeightStore()
        data = np.load(path, allow_pickle=False)
        for n in data.files:
            store.put_lazy(n, lambda n=n: data[n])
        return store


@dataclass
class Module:
    """Named graphs (`@target`, `@draft`, ...), each with its own weight store (a draft
    and a target name their tensors alike: `model.embed_tokens.weight`), and the listing
    texts of its kernel ops (`listings`: key -> text; kernel ops name their keys, e.g.
    "pim/target.0007.linear.gemv.pim"), stored out of line like weights."""

    graphs: dict[str, Graph] = field(default_factory=dict)
    stores: dict[str, WeightStore] = field(default_factory=dict)
    listings: dict[str, str] = field(default_factory=dict)

    def weights_of(self, graph_name: str) -> WeightStore:
        return self.stores.setdefault(graph_name, WeightStore())

    def add_graph(self, graph: Graph) -> Graph:
        graph.module = self
        self.graphs[graph.name] = graph
        return graph

    def new_graph(self, name: str) -> Graph:
        return self.add_graph(Graph(name))

    def __iter__(self) -> Iterator[Graph]:
        return iter(self.graphs.values())
