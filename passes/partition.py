"""partition: put every op on the NPU or on PIM, minimizing the step's latency.

    partition                                  exact min-cut over the cost model (default)
    partition{policy=dp}  partition{policy=greedy}
    partition{mapping=attacc}                  a published design (policy=fixed implied)
    partition{policy=fixed,mapping=specpim,hw=aim-gddr6,bind=T=1:P=1024}
    partition{mapping=specpim,bind=T=5:P=72,batch=4,graphs=target}   one graph, batched

Model (the step runs its ops one after the other, as SpecPIM's serial schedule does):
total = sum of each op's latency on its device (`cost_ns`, from the `cost` pass, run
here first if the graph has no costs for this hw) + for every activation that crosses
between NPU and PIM, once per step, `costmodel.transfer_cost` (through DRAM). Glue ops
(`costmodel.is_glue`: views, layout permutations, KV-cache appends) are transparent: an
activation crossing through a reshape/transpose/KV append is charged once, by the bytes
its producer wrote. Graph inputs and outputs cross in every design and are not charged.

Policies: `mincut` (exact, networkx minimum_cut on the two-device graph), `dp` (exact DP
over a topological order, beam-capped), `greedy`; each is never slower than both all-NPU
and all-PIM under this model. Mappings (the published designs, after ANCHORS.md):
- `specpim`: each decode GEMM-class op (linear, matmul, gated_mlp, attention) wholly on
  the NPU or on PIM, chosen by the policy's solver (SpecPIM's GA finds this mapping
  offline; here it is solved exactly); every other op is fused into its preceding GEMM
  (the group of the latest-produced operand) and goes where that GEMM goes; ops before
  the first GEMM (embedding, rotary tables) and prefill graphs (no KV-cache input, or
  P=0) run on the NPU;
- `attacc`: attention on PIM, everything else (FC layers, norms) on the NPU;
- `all-npu`, `all-pim` (ops PIM cannot hold fall back to the NPU, with the reason).
Shape: `bind` gives the symbols (T new positions per request, P cached); `batch=N`
prices a forward of N requests as the runtime does (costmodel.batched_bindings: GEMMs
over weights see N*T rows, attention runs per request) and charges N requests'
activations per crossing, so a verify of γ+1 positions at batch N (compute-bound) can get
another mapping than a decode step; `graphs=a:b` partitions only those graphs (the
draft and the target at their own shapes, as `speccc dse` does).
Pricing: `channels=A-B` prices every op as the runtime does for a model confined to PIM
channels A..B (their PU configuration, the NPU's bandwidth share; crossings too), and
`cost-model=targets|targets-fast|roofline` with the runtime's estimators of that name
(`speccc run --cost-model`); the graph records `cost_pricing` and the partition
`pricing` (_partition_pricing.py). Default: the whole device, the registered targets.
Devices: `devices=A:B` partitions between any two registered targets the `cost` pass
priced (default npu:pim; the mappings name npu and pim); the graph attribute records
`devices` when it is not the default pair.
Rewrites: every non-glue op gets `device` ("npu"/"pim"), `cost_ns`/`cost_pj` and
`region`; the graph gets `partition` (policy, totals, baselines). The report reads
lowered graphs too (a kernel op counts as the op it lowered). Regions are convex
groups of same-device ops, merged in topological order only when the contracted region
graph stays acyclic (checked with networkx), so each region can run as one device
program. `partition_report(graph)` turns the attributes into the table for report.json.
"""
from __future__ import annotations

import math

import networkx as nx

from speccc.costmodel import is_glue, transfer_cost
from speccc.errors import SpecccError
from speccc.ir.ops.kernel import lowered_name
from speccc.passes._partition_pricing import pricing
from speccc.passes._partition_solve import INF, SOLVERS, Problem, evaluate
from speccc.passes.cost import (DEFAULT_DEVICES, annotate, cost_devices, graph_setting,
                                 round6, setting_attrs)
from speccc.passmanager import Pass, register_pass

POLICIES = ("greedy", "dp", "mincut", "fixed")
MAPPINGS = ("specpim", "attacc", "all-npu", "all-pim")
GEMM_KINDS = {"linear", "matmul", "gemm", "gated_mlp", "attention", "matmul_nbits"}


def is_decode_gemm(op) -> bool:
    """SpecPIM's unit of mapping: a GEMM over stored weights (q/k/v/o, FFN, lm_head) or
    attention (score q.K^T and context p.V); a matmul of activations is not one."""
    kind = lowered_name(op)
    if kind in ("matmul", "gemm"):
        w = op.operands[1]
        return w.op is not None and w.op.name == "weight"
    return kind in GEMM_KINDS


# ------------------------------------------------------------------ the op DAG ---
def dataflow(graph, bindings):
    """(compute ops in topological order, producers: op -> [ops], values: [(op, [ops],
    bytes)]) looking through glue ops."""
    ops = [op for op in graph.ops() if not is_glue(op)]
    producers = {op: [] for op in ops}
    values = []
    for u in ops:
        for r in u.results:
            seen, stack, cons = set(), [r], []
            while stack:
                for user, _ in stack.pop().users:
                    if user in seen:
                        continue
                    seen.add(user)
                    if is_glue(user):
                        stack.extend(user.results)
                    else:
                        cons.append(user)
            if cons:
                nbytes = r.type.nbytes(bindings)
                values.append((u, cons, float(nbytes) if isinstance(nbytes, int) else 0.0))
                for c in cons:
                    if u not in producers[c]:
                        producers[c].append(u)
    return ops, producers, values


def convex_groups(ops, producers, candidates) -> dict:
    """Group ops (in topological order): each joins the first of its candidate groups
    (`candidates(op, group_of)`) whose merge keeps the contracted group graph acyclic,
    else starts a new group; then its other candidates are merged in where that stays
    acyclic too. Returns op -> group id (0, 1, ... in order of first appearance)."""
    gg, parent, raw = nx.DiGraph(), {}, {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def detour(a, b):          # a path a -> ... -> b other than the edge a -> b
        return any(nx.has_path(gg, s, b) for s in gg.successors(a) if s != b)

    for v in ops:
        preds = {find(raw[u]) for u in producers[v]}
        cands = list(dict.fromkeys(find(c) for c in candidates(v, lambda op: find(raw[op]))))
        chosen = next((R for R in cands
                       if all(Q == R or not nx.has_path(gg, R, Q) for Q in preds)), None)
        if chosen is None:
            chosen = len(parent)
            parent[chosen] = chosen
            gg.add_node(chosen)
        raw[v] = chosen
        gg.add_edges_from((Q, chosen) for Q in preds if Q != chosen)
        for R in cands:
            R = find(R)
            if R != chosen and not detour(chosen, R) and not detour(R, chosen):
                nx.contracted_nodes(gg, chosen, R, self_loops=False, copy=False)
                parent[R] = chosen
    ids: dict = {}
    return {v: ids.setdefault(find(raw[v]), len(ids)) for v in ops}


def region_graph(graph) -> nx.DiGraph:
    """Regions (op attr `region`) contracted: an edge per activation between regions."""
    ops, producers, _ = dataflow(graph, {})
    rg = nx.DiGraph()
    for v in ops:
        if "region" in v.attrs:
            rg.add_node(v.attrs["region"])
            rg.add_edges_from((u.attrs["region"], v.attrs["region"]) for u in producers[v]
                              if "region" in u.attrs and u.attrs["region"] != v.attrs["region"])
    return rg


# ------------------------------------------------------------------ mappings -----
def is_prefill(graph, bindings) -> bool:
    return not graph.attrs.get("kv_cache") or bindings.get("P", 1) == 0


def pair_costs(graph, devices, key: str = "cost_ns") -> dict:
    """{op: [cost on devices[0], cost on devices[1]]} from the cost pass's columns."""
    have = cost_devices(graph)
    missing = [d for d in devices if d not in have]
    if missing:
        raise SpecccError(f"partition: no costs for {', '.join(missing)} (the cost pass "
                          f"priced {':'.join(have)}; run cost{{devices={':'.join(devices)}}})")
    cols = [have.index(d) for d in devices]
    return {op: [op.attrs[key][c] for c in cols] for op in graph.ops() if key in op.attrs}


def _groups(graph, ops, producers, mapping, bindings, ns):
    """(group of each op, fixed device per group or None) for a mapping."""
    if mapping == "specpim" and not is_prefill(graph, bindings):
        pos = {op: i for i, op in enumerate(ops)}

        def fuse(v, group_of):
            # elementwise work rides with its GEMM; an op PIM cannot run (a norm: cost
            # inf on PIM) is its own group, else it would pin the GEMM to the NPU
            if is_decode_gemm(v) or not producers[v] or ns[v][1] == INF:
                return []
            return [group_of(max(producers[v], key=pos.get))]
        group = convex_groups(ops, producers, fuse)
        has_gemm = {group[v] for v in ops if is_decode_gemm(v)}
        fixed = {g: (None if g in has_gemm else 0) for g in set(group.values())}
        return group, fixed
    group = {op: i for i, op in enumerate(ops)}
    rule = {"all-npu": lambda op: 0, "all-pim": lambda op: 1, "specpim": lambda op: 0,
            "attacc": lambda op: 1 if lowered_name(op) == "attention" else 0}.get(mapping)
    fixed = {group[op]: (rule(op) if rule else None) for op in ops}
    return group, fixed


def build_problem(graph, hw, bindings, mapping=None, devices=DEFAULT_DEVICES, batch=1):
    # activations of `batch` requests cross together: their bytes at batch*T rows
    rows = {**bindings, "T": batch * bindings["T"]} if "T" in bindings else bindings
    ops, producers, values = dataflow(graph, rows)
    ns = pair_costs(graph, devices)
    group, fixed = _groups(graph, ops, producers, mapping, bindings, ns)
    n = len(set(group.values()))
    cost = [[0.0, 0.0] for _ in range(n)]
    for op in ops:
        for d in (0, 1):
            cost[group[op]][d] += ns[op][d]
    fix = [fixed[g] for g in range(n)]
    for g in range(n):                       # cannot hold it in the banks: NPU
        if fix[g] == 1 and cost[g][1] == INF:
            fix[g] = 0
    vals = []
    for u, cons, nbytes in values:
        cs = tuple(sorted({group[c] for c in cons} - {group[u]}))
        if cs:
            vals.append((group[u], cs, transfer_cost(hw, nbytes).latency_ns))
    gg = nx.DiGraph()
    gg.add_nodes_from(range(n))
    gg.add_edges_from((u, c) for u, cs, _ in vals for c in cs)
    order = list(nx.lexicographical_topological_sort(gg))
    return Problem([tuple(c) for c in cost], fix, vals, order), group, ops, producers, values


# ------------------------------------------------------------------ the pass -----
def partition_graph(graph, hw, bindings, policy="mincut", mapping=None, max_states=20000,
                    devices=DEFAULT_DEVICES, batch=1, channels=None, cost_model=None):
    """`channels` ('A-B') / `cost_model`: price as the runtime prices a model on those
    channels with that cost model (_partition_pricing.py); default: the whole device."""
    devices = list(devices)
    hw_attr, bind_attr = setting_attrs(hw, bindings)
    price = pricing(hw, channels, cost_model)
    stale = (graph.attrs.get("cost_hw"), list(graph.attrs.get("cost_bind") or []),
             graph.attrs.get("cost_batch", 1), graph.attrs.get("cost_pricing")) \
        != (hw_attr, bind_attr, batch, price.text) \
        or not set(devices) <= set(cost_devices(graph))
    if stale or any("cost_ns" not in op.attrs for op in graph.ops() if not is_glue(op)):
        # devices priced before, less those this hardware lacks (a GPU system: no npu)
        priced = [d for d in cost_devices(graph) if getattr(hw, d, True) is not None]
        annotate(graph, hw, bindings, model=price.model,
                 devices=priced + [d for d in devices if d not in priced], batch=batch,
                 pricing=price.text)
    # crossings priced on the same view (a channel group's share of the DRAM bandwidth)
    hw = price.hw
    problem, group, ops, producers, values = build_problem(graph, hw, bindings, mapping,
                                                           devices, batch)
    ns, pj = pair_costs(graph, devices), pair_costs(graph, devices, "cost_pj")
    solver = "mincut" if policy == "fixed" else policy
    kw = {"max_states": max_states} if solver == "dp" else {}
    sol = SOLVERS[solver](problem, **kw)
    dev = {op: devices[sol.assign[group[op]]] for op in ops}
    for op in ops:
        op.attrs["device"] = dev[op]
    regions = convex_groups(ops, producers, lambda v, group_of: sorted(
        {group_of(u) for u in producers[v] if dev[u] == dev[v]}))
    for op in ops:
        op.attrs["region"] = regions[op]
    rg = region_graph(graph)
    if not nx.is_directed_acyclic_graph(rg):      # convex_groups guarantees it
        raise SpecccError(f"partition: device regions form a cycle: {nx.find_cycle(rg)}")
    base = {m: build_problem(graph, hw, bindings, m, devices, batch)[0]
            for m in ("all-npu", "all-pim")}
    compute = [sum(ns[op][i] for op in ops if dev[op] == d) for i, d in enumerate(devices)]
    moved = [(u, nb) for u, cons, nb in values if any(dev[c] != dev[u] for c in cons)]
    xfer = [transfer_cost(hw, nb) for _, nb in moved]
    energy = sum(pj[op][devices.index(dev[op])] for op in ops) \
        + sum(x.energy_pj for x in xfer)
    graph.attrs["partition"] = [
        ["policy", policy], ["solver", solver], ["mapping", mapping or "none"],
        ["hw", hw_attr], ["bind", ":".join(bind_attr)],
        ["latency_ns", round6(sol.total)], [f"{devices[0]}_ns", round6(compute[0])],
        [f"{devices[1]}_ns", round6(compute[1])],
        ["transfer_ns", round6(sum(x.latency_ns for x in xfer))], ["transfers", len(moved)],
        ["transfer_bytes", round6(sum(nb for _, nb in moved))], ["energy_pj", round6(energy)],
        ["regions", len(set(regions.values()))], ["exact", sol.exact],
        [f"all_{devices[0]}_ns", round6(evaluate(base["all-npu"], base["all-npu"].fixed))],
        [f"all_{devices[1]}_ns", round6(evaluate(base["all-pim"], base["all-pim"].fixed))]]
    if devices != DEFAULT_DEVICES:
        graph.attrs["partition"].insert(3, ["devices", ":".join(devices)])
    if batch != 1:
        graph.attrs["partition"].insert(5, ["batch", batch])
    if price.text:
        graph.attrs["partition"].insert(5, ["pricing", price.text])
    return sol


@register_pass
class Partition(Pass):
    name = "partition"
    summary = "choose npu/pim per op (greedy, dp, mincut; specpim/attacc/all-npu/all-pim)"
    policy: str = None
    mapping: str = None
    hw: str = None
    bind: list = None
    max_states: int = 20000
    devices: list = None   # two registered targets, ':'-separated (default npu:pim)
    batch: int = 1         # requests per forward (T is per request)
    graphs: list = None    # only these graphs, ':'-separated (default: every graph)
    channels: str = None   # price on PIM channels A-B as the runtime does (a model's group)
    cost_model: str = None  # targets (default), targets-fast, roofline: runtime's --cost-model

    def run(self, module) -> None:
        names = [g.name for g in module]
        unknown = [n for n in self.graphs or [] if n not in names]
        if unknown:
            raise SpecccError(f"partition: graphs names @{unknown[0]}, which the module "
                              f"does not have (its graphs: {', '.join(names)})")
        for g in list(module):
            if not self.graphs or g.name in self.graphs:
                self.run_on_graph(g)

    def run_on_graph(self, graph) -> None:
        policy = self.policy or ("fixed" if self.mapping else "mincut")
        if policy not in POLICIES:
            raise SpecccError(f"partition: unknown policy {policy!r}; known: {', '.join(POLICIES)}")
        if self.mapping is not None and self.mapping not in MAPPINGS:
            raise SpecccError(f"partition: unknown mapping {self.mapping!r}; "
                              f"known: {', '.join(MAPPINGS)}")
        if policy == "fixed" and not self.mapping:
            raise SpecccError("partition: policy=fixed needs a mapping "
                              f"({', '.join(MAPPINGS)})")
        hw, bindings = graph_setting(graph, self.hw, self.bind)
        devices = self.devices or DEFAULT_DEVICES
        if len(devices) != 2:
            raise SpecccError(f"partition: devices names two targets (A:B), got "
                              f"{':'.join(devices)}")
        if int(self.batch) < 1:
            raise SpecccError(f"partition: batch must be >= 1, got {self.batch}")
        if int(self.batch) > 1 and "T" not in bindings:
            raise SpecccError("partition: batch > 1 needs T bound (bind=T=N:...; T is "
                              "the positions per request)")
        partition_graph(graph, hw, bindings, policy, self.mapping, self.max_states, devices,
                        int(self.batch), self.channels, self.cost_model)


# ------------------------------------------------------------------ the report ---
RULES = {"attacc": "AttAcc: attention on PIM, FC layers and vector ops on the NPU",
         "all-npu": "every op on the NPU", "all-pim": "every op on PIM"}


def partition_report(graph) -> dict:
    """The partition of `graph` as a JSON-able dict for report.json: settings and totals
    (the `partition` graph attribute) and one row per op with its device and reason."""
    info = dict(graph.attrs.get("partition") or [])
    if not info:
        raise SpecccError(f"@{graph.name} is not partitioned (run the partition pass)")
    hw, bindings = graph_setting(graph, info["hw"], info["bind"].split(":") if info["bind"] else [])
    mapping = None if info["mapping"] == "none" else info["mapping"]
    devices = info["devices"].split(":") if "devices" in info else DEFAULT_DEVICES
    ops, producers, values = dataflow(graph, bindings)
    pair = pair_costs(graph, devices)
    group, fixed = _groups(graph, ops, producers, mapping, bindings, pair)
    gemm_of = {group[op]: op for op in ops if is_decode_gemm(op)}
    rows = []
    for i, op in enumerate(graph.ops()):
        row = {"index": i, "op": lowered_name(op), "loc": op.loc, "device": "host"}
        if is_glue(op):
            rows.append({**row, "reason": "glue: view / layout / KV append, no kernel"})
            continue
        d = devices.index(op.attrs["device"])
        ns = pair[op]
        row.update({"device": op.attrs["device"], f"{devices[0]}_ns": ns[0],
                    f"{devices[1]}_ns": ns[1], "region": op.attrs.get("region")})
        g = group[op]
        if ns[1] == INF and d == 0:
            why = "does not fit in the PIM banks"
        elif mapping in RULES:
            why = f"mapping {mapping}: {RULES[mapping]}"
        elif mapping == "specpim" and fixed[g] == 0:
            why = "specpim: no GEMM before it (or prefill): NPU"
        elif mapping == "specpim" and not is_decode_gemm(op) and g in gemm_of:
            why = f"specpim: fused into its preceding GEMM ({gemm_of[g].where()})"
        elif ns[d] <= ns[1 - d]:
            why = f"faster on {devices[d]} ({ns[d]:.6g} vs {ns[1 - d]:.6g} ns)"
        else:
            why = (f"{ns[d] - ns[1 - d]:.6g} ns slower on {devices[d]}, but saves "
                   "activation transfers to its neighbours")
        rows.append({**row, "reason": why})
    # JSON has no Infinity: a device an op cannot run on (does not fit) is null
    return {k: _finite_or_none(v) for k, v in info.items()} | {
        "ops": [{k: _finite_or_none(v) for k, v in r.items()} for r in rows]}


def _finite_or_none(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v
