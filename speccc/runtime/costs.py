"""Task lists for model forwards, KV operations and host transfers, priced by
speccc.costmodel at each invocation's real (T, P).

Placement of an op: its `device` attribute (set by a partition pass) wins; prefill ops go
to the NPU (SpecPIM: prefill runs on the NPU); otherwise `auto` picks the faster of
npu/pim for this (T, P) and `default` uses the cost model's default device.

A model owns PIM channel groups (one per pipeline stage). Its ops are priced on a view of
the hardware restricted to the group: `pim.channels` = the group's channels and the NPU's
external bandwidth scaled by the group's share (the weights it streams live there). An
NPU op that reads weights or the KV cache holds the group too (a channel serves PIM
commands or ordinary reads, not both at once).

KV operations move real bytes on the group holding the cache, over its channels' data
bus (peak_external_gbs_per_channel x channels; a GPU-only system: the GPUs' memory): append writes the new positions (it
replaces the graph's concat of the whole cache), rollback clears rejected positions (so
stale rows never enter an all-bank MAC), copy reads and writes positions between
partitions. Batch B: weight-streaming ops see B*T rows; attention and KV scale by B.
"""
from __future__ import annotations

import dataclasses

from speccc import costmodel
from speccc.costmodel import FREE_OPS, CostModel, default_device, is_kv_append, weight_bytes
from speccc.runtime.engine import TaskSpec

KV_OVERHEAD_NS = 100.0   # one command round on the channel (EST, as roofline_pim's 100 ns)


COST_MODELS = ("targets", "targets-fast", "roofline")


def estimators(name):
    """`targets`: the registered targets' costs (speccc.targets);
    `targets-fast`: the same, but PIM GEMVs in closed form where it is within 5% of the
    emulator (targets/pim/closed_form.py), emulated elsewhere;
    `roofline`: the cost model's own rooflines (fast, hardware description only);
    or a mapping device -> estimator (tests)."""
    if isinstance(name, dict):
        return name
    if name == "roofline":
        return costmodel.roofline_estimators()
    if name == "targets-fast":
        return {**costmodel.target_estimators(), "pim": _pim_closed_form}
    return None


def _pim_closed_form(hw, op, bindings):
    from speccc.targets.pim.cost import pim_cost
    return pim_cost(hw.for_channels(op.attrs.get("pim_channels")), op, bindings, fast=True)


def group_hw(hw, channels):
    """The hardware as seen by a model confined to PIM `channels` (ids): their channel
    group's PU configuration (a preset's [[pim.groups]]), that many channels, and the
    NPU's external bandwidth scaled by their share (the weights it streams live there)."""
    if hw.pim is None or not channels:   # a GPU-only system: nothing to confine
        return hw
    channels = list(channels)
    share = len(channels) / hw.pim.channels
    hw = hw.for_channels(channels)
    npu = hw.npu and dataclasses.replace(hw.npu,
                                         ext_bandwidth_gbs=hw.npu.ext_bandwidth_gbs * share)
    return dataclasses.replace(
        hw, pim=dataclasses.replace(hw.pim, channels=len(channels), groups=()), npu=npu)


def kv_memory(hw, channels: int) -> tuple[float, float]:
    """(GB/s, pJ/bit) of the memory holding the KV cache: the model's PIM channels'
    data bus, or (a system without PIM) the GPUs' memory at its achievable bandwidth."""
    if hw.pim is None:
        g = hw.gpu
        return g.mem_bandwidth_gbs * g.memory_efficiency * hw.system.xpus, g.mem_pj_per_bit
    return (hw.derived()["peak_external_gbs_per_channel"] * channels,
            hw.energy.external_pj_per_bit)


def link_task(hw, name: str, nbytes: float, args=None) -> TaskSpec:
    lk = hw.link
    return TaskSpec(name, ("link",), lk.latency_ns + nbytes / lk.bandwidth_gbs,
                    nbytes * 8 * lk.energy_pj_per_bit, "link", -1,
                    {"bytes": nbytes, **(args or {})})


class ModelCosts:
    def __init__(self, graph, hw, groups: dict, stages: list[str], placement: str = "auto",
                 batch: int = 1, granularity: str = "op", cost_model: str = "targets"):
        self.graph, self.hw, self.batch = graph, hw, batch
        self.placement, self.granularity = placement, granularity
        self.stages = list(stages)
        self.channels = [len(groups[s]) for s in self.stages]
        self.models = [CostModel(group_hw(hw, groups[s]), estimators(cost_model))
                       for s in self.stages]
        self.kv_gbs = [kv_memory(hw, n)[0] for n in self.channels]
        self.kv_pj_per_bit = kv_memory(hw, 1)[1]
        ops = [op for op in graph.ops() if op.name not in FREE_OPS]
        wb = [weight_bytes(op, {}) if _static_weights(op) else 0.0 for op in ops]
        # Pipeline stages take consecutive ops, weight bytes in proportion to channels.
        total, acc = sum(wb) or 1.0, 0.0
        bounds = [sum(self.channels[:i + 1]) / sum(self.channels)
                  for i in range(len(self.channels))]
        self.ops = []   # (op, stage, is_kv, reads_memory, depends_on_P, token_bytes)
        self.kv_token_bytes = [0] * len(self.stages)
        for op, w in zip(ops, wb):
            mid = (acc + w / 2) / total
            st = next((i for i, b in enumerate(bounds) if mid < b), len(bounds) - 1)
            acc += w
            is_kv = is_kv_append(op)
            tok = _token_bytes(op) if is_kv else 0
            self.kv_token_bytes[st] += tok
            dep_p = any("P" in v.type.symbols for v in (*op.operands, *op.results))
            reads = w > 0 or op.name == "attention"
            self.ops.append((op, st, is_kv, reads, dep_p, tok))
        self._cache: dict = {}

    # ---------------------------------------------------------------- forwards ---
    def forward(self, T: int, P: int, prefill: bool = False,
                rows: int | None = None) -> list[TaskSpec]:
        """Tasks of one forward over T new positions after P cached ones, for `rows`
        requests (default: the batch; a pipeinfer run serves only its own requests)."""
        out, b = [], rows or self.batch
        for i, (op, st, is_kv, reads, dep_p, tok) in enumerate(self.ops):
            key = (i, T, P if dep_p else -1, prefill, b)
            spec = self._cache.get(key)
            if spec is None:
                spec = self._op_task(op, st, is_kv, reads, tok, T, P, prefill, b)
                self._cache[key] = spec
            if spec is not False:
                out.append(spec)
        return self._coarsen(out) if self.granularity == "stage" else out

    def _op_task(self, op, st, is_kv, reads, tok, T, P, prefill, b):
        group = self.stages[st]
        if is_kv:
            return self._kv_spec("kv_append", st, b * T * tok, 1, {"T": T, "P": P})
        model = self.models[st]
        bind = costmodel.batched_bindings(op, {"T": T, "P": P, "B": 1}, b)
        if "device" in op.attrs:
            dev = op.attrs["device"]
            c = model.op_cost(op, dev, bind)
        elif prefill:     # on the system's xPU (a GPU system has no NPU)
            dev = model.hw.system.xpu
            c = model.op_cost(op, dev, bind)
        elif self.placement == "auto" and default_device(op) != "host":
            dev, c = min(((d, model.op_cost(op, d, bind)) for d in ("npu", "pim")),
                         key=lambda dc: dc[1].latency_ns)
        else:
            dev = default_device(op)
            c = model.op_cost(op, dev, bind)
        lat, en = c.latency_ns, c.energy_pj
        if dev == "pim":      # over the xPU<->PIM link of a system that has one (AttAcc)
            x = costmodel.pim_link_cost(model.hw, op, bind)
            lat, en = lat + x.latency_ns, en + x.energy_pj
        lat, en = costmodel.per_request_scale(model.hw, dev, op, lat, en, b)
        if dev == "host" or (lat <= 0 and en <= 0):
            return False
        # the xPU slot is the runtime's "npu" resource, whichever xPU a system has; a GPU
        # reads its own memory, an NPU reading weights or KV holds their channels
        res = (group,) if dev == "pim" else ("npu",) if dev == "gpu" else \
            (("npu", group) if reads else ("npu",))
        return TaskSpec(op.name, res, lat, en, "op", st,
                        {"T": T, "P": P, "device": dev, "bound": c.bound})

    def _coarsen(self, specs: list[TaskSpec]) -> list[TaskSpec]:
        """One task per stage (holding the union of its resources): fast, coarse."""
        groups: list = []   # [stage, {resource: None}, dur, energy, args]
        for s in specs:
            if not groups or groups[-1][0] != s.stage:
                groups.append([s.stage, dict.fromkeys(s.resources), 0.0, 0.0, s.args])
            g = groups[-1]
            for r in s.resources:
                g[1][r] = None
            g[2] += s.dur
            g[3] += s.energy
        return [TaskSpec("forward", tuple(res), dur, en, "op", st, args)
                for st, res, dur, en, args in groups]

    # ---------------------------------------------------------------- KV ---------
    def kv(self, action: str, entries: int, rows: int | None = None) -> list[TaskSpec]:
        """rollback (clear `entries` positions) or copy (read + write them), per stage,
        for each of `rows` requests (default: the batch)."""
        if entries <= 0:
            return []
        rw = 2 if action == "copy" else 1
        return [self._kv_spec(f"kv_{action}", st, (rows or self.batch) * entries * tok, rw,
                              {"entries": entries})
                for st, tok in enumerate(self.kv_token_bytes) if tok]

    def _kv_spec(self, name, st, nbytes, rw, args) -> TaskSpec:
        moved = nbytes * rw
        return TaskSpec(name, (self.stages[st],), KV_OVERHEAD_NS + moved / self.kv_gbs[st],
                        moved * 8 * self.kv_pj_per_bit, "kv", st,
                        {"bytes": moved, **args})


def _static_weights(op) -> bool:
    return all(isinstance(v.type.nbytes(), int) for v in op.operands
               if v.op is not None and v.op.name == "weight")


def _token_bytes(op) -> int:
    t = op.result.type
    n = t.bind({"P": 0, "T": 1}).nbytes()
    return int(n) if isinstance(n, int) else 0
