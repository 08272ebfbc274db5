"""speculate: write the speculative decoding schedule of a module with @draft and @target
as a program of `spec.*` ops in a `@schedule` graph.

    speculate{schedule=serial,gamma=4}
    speculate{schedule=overlap,gamma=4,draft_channels=2,hw=aim-gddr6}
    speculate{schedule=pipeinfer,gamma=3,p_accept=0.1,p_recovery=0.2,max_inflight=4}
    speculate{schedule=serial,gamma=8,adaptive=true,p_min=0.3}

Schedules (each one program builder in PROGRAMS): `none` (target only, autoregressive),
`serial` (draft gamma tokens, verify gamma+1 positions; with draft_channels=N the draft
and the target own disjoint PIM channel sets, which is SpecPIM), `overlap` (serial plus a
speculative next draft while the verify is in flight, cancelled when the verify rejects),
`pipeinfer` (a burst of chained speculative runs with a confidence cutoff, early
cancellation, one KV partition per in-flight run; `stages` splits the target's channels
into pipeline stages). serial/overlap options: `p_min` (a draft stops when its confidence
falls below it, llama.cpp's --draft-p-min) and `adaptive` (each request drafts the length,
up to gamma, that maximizes expected tokens per unit time under its running acceptance
estimate).

A preset with channel groups named after the models (`[[pim.groups]]` draft, target)
gives the draft its group unless draft_channels says otherwise.

Adds: `@schedule`, whose attributes declare the resources (PIM channel groups), the two
models, the hardware preset, placement and batch, and whose ops are the program the
runtime interprets (speccc/runtime/semantics.py; docs/schedules.md). Checks: both graphs
exist and have KV caches, the vocabularies agree, the channel split fits the preset.
Guarantees: the program verifies (speccc/ir/ops/schedule.py); @draft/@target unchanged.
"""
from __future__ import annotations

from speccc import modelinfo
from speccc.errors import SpecccError
from speccc.ir.core import Graph
from speccc.ir.ops.schedule import NPU
from speccc.passmanager import Pass, register_pass

PLACEMENTS = ("auto", "default")
GRAPH = "schedule"


@register_pass
class Speculate(Pass):
    name = "speculate"
    summary = "build the speculative decoding schedule (@schedule) for @draft/@target"
    schedule: str = "serial"
    gamma: int = 4
    draft_channels: int = 0     # 0: serial shares all channels; overlap/pipeinfer: auto
    stages: int = 1             # pipeinfer: target pipeline stages (channel groups)
    p_accept: float = 0.5
    p_recovery: float = 0.0
    p_decay: float = 0.0
    max_inflight: int = 4
    rounds: str = "request"     # pipeinfer, batch > 1: a burst round drafts and launches
                                # for one request (round-robin) or for every ready one
    p_min: float = 0.0          # serial/overlap: a draft stops below this confidence
    adaptive: bool = False      # serial/overlap: per-request draft length (<= gamma)
    hw: str = "hbm-pim"
    placement: str = "auto"
    batch: int = 1
    draft: str = "draft"
    target: str = "target"

    def run(self, module) -> None:
        self._check_options()
        graphs = module.graphs
        if self.target not in graphs:
            raise SpecccError(f"speculate: module has no @{self.target} graph")
        tgt = graphs[self.target]
        modelinfo.kv_pairs(tgt)
        spec = self.schedule != "none"
        if spec:
            if self.draft not in graphs:
                raise SpecccError(f"speculate: schedule {self.schedule} needs a @{self.draft} "
                                  "graph (the draft model)")
            dft = graphs[self.draft]
            modelinfo.kv_pairs(dft)
            vd, vt = modelinfo.vocab(dft), modelinfo.vocab(tgt)
            if vd != vt:
                raise SpecccError(f"draft and target vocabularies differ (draft {vd} tokens, "
                                  f"target {vt}): speculative decoding needs one tokenizer")
        from speccc.hw import load_hw
        hw = load_hw(self.hw, system=True)    # a GPU system runs none / serial schedules
        groups, draft_on, target_on = self._groups(hw, module if spec else None)
        graphs.pop(GRAPH, None)
        g = Graph(GRAPH)
        module.add_graph(g)
        g.attrs = {"schedule": self.schedule, "draft": self.draft, "target": self.target,
                   "hw": self.hw, "placement": self.placement, "batch": self.batch,
                   "groups": list(groups), "channels": [list(c) for c in groups.values()]}
        emit = _Emitter(g)
        prefill = emit("spec.prefill", model=self.target, on=[NPU])
        last = PROGRAMS[self.schedule](self, emit, prefill, [draft_on], target_on)
        g.set_outputs([last], ["done"])

    def _check_options(self) -> None:
        def bad(msg):
            raise SpecccError(f"speculate: {msg}")
        if self.schedule not in PROGRAMS:
            bad(f"schedule must be one of {', '.join(PROGRAMS)}, got {self.schedule!r}")
        if self.gamma < 1:
            bad(f"gamma must be >= 1 (tokens drafted per verify), got {self.gamma}")
        if self.placement not in PLACEMENTS:
            bad(f"placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if self.batch < 1:
            bad(f"batch must be >= 1, got {self.batch}")
        if self.draft_channels < 0:
            bad(f"draft_channels must be >= 0, got {self.draft_channels}")
        if self.stages < 1 or (self.stages > 1 and self.schedule != "pipeinfer"):
            bad(f"stages={self.stages}: pipeline stages are a pipeinfer option (>= 1)")
        if self.max_inflight < 1:
            bad(f"max_inflight must be >= 1, got {self.max_inflight}")
        if self.rounds not in ROUNDS:
            bad(f"rounds must be {' or '.join(ROUNDS)}, got {self.rounds!r}")
        if self.rounds != "request" and self.schedule != "pipeinfer":
            bad(f"rounds={self.rounds}: burst rounds are a pipeinfer option")
        if (self.p_min or self.adaptive) and self.schedule not in ("serial", "overlap"):
            bad("p_min and adaptive are serial/overlap options (pipeinfer has its cutoff)")
        for k in ("p_accept", "p_recovery", "p_decay", "p_min"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                bad(f"{k} must be in [0, 1], got {getattr(self, k)}")

    def _groups(self, hw, module):
        if hw.pim is None:      # a GPU-only system: one nominal group, nothing to split
            if self.schedule in ("overlap", "pipeinfer") or self.draft_channels > 0:
                raise SpecccError(f"speculate: {self.hw} has no PIM channels to split "
                                  f"between draft and target; schedule {self.schedule} "
                                  "needs them (a GPU system runs none or serial)")
            return {"pim": [0]}, "pim", ["pim"]
        channels = hw.pim.channels
        ids = list(range(channels))
        own = self._preset_split(hw) if module is not None else 0
        split = self.schedule in ("overlap", "pipeinfer") or self.draft_channels > 0 or own
        if not split:
            return {"pim": ids}, "pim", ["pim"]
        n = self.draft_channels or own or self._auto_draft_channels(channels, module)
        need = n + self.stages
        if need > channels:
            raise SpecccError(
                f"schedule {self.schedule} needs {need} PIM channels (draft {n} + target "
                f"{self.stages} stage(s), at least one channel each) but {self.hw} has "
                f"{channels}; lower draft_channels/stages or pick another --hw")
        groups = {"pim.draft": ids[:n]}
        rest = ids[n:]
        names = []
        for s in range(self.stages):
            name = "pim.target" if self.stages == 1 else f"pim.target{s}"
            lo, hi = s * len(rest) // self.stages, (s + 1) * len(rest) // self.stages
            groups[name] = rest[lo:hi]
            names.append(name)
        return groups, "pim.draft", names

    def _preset_split(self, hw) -> int:
        """A preset whose channel groups are named after the models (SpecPIM's per-model
        PIM resources, e.g. hbm3-pim-spec) gives the draft its group: its channel count
        (the draft's group first, as place{split} expects), else 0."""
        names = [g.name for g in hw.pim.groups]
        if names[:1] != [self.draft] or self.target not in names:
            return 0
        return hw.group(self.draft).hi - hw.group(self.draft).lo

    def _auto_draft_channels(self, channels: int, module) -> int:
        """Channels in proportion to weight bytes (decode streams every weight once)."""
        wd = modelinfo.weight_bytes(module.graphs[self.draft])
        wt = modelinfo.weight_bytes(module.graphs[self.target])
        share = round(channels * wd / max(wd + wt, 1))
        return max(1, min(share, channels - self.stages))


class _Emitter:
    """`emit(name, *deps, **attrs)` appends a spec op after `deps`; returns its token."""

    def __init__(self, graph):
        self.graph = graph

    def __call__(self, name, *deps, **attrs):
        return self.graph.create(name, list(deps), attrs).result


# One builder per schedule: (pass, emit, prefill token, draft group, target stages) ->
# the token of the program's spec.step. The runtime executes what these write.
def _none(p, emit, prefill, dft, tgt):
    v = emit("spec.verify", prefill, model=p.target, on=tgt, positions=1, kind="nonspec")
    acc = emit("spec.accept", emit("spec.kv", v, model=p.target, on=tgt, action="append"))
    return emit("spec.step", emit("spec.kv", acc, model=p.target, on=tgt, action="rollback"))


def _serial(p, emit, prefill, dft, tgt, overlap=False):
    knobs = {k: v for k, v in (("p_min", p.p_min), ("adaptive", p.adaptive)) if v}
    d = emit("spec.draft", prefill, model=p.draft, on=dft, tokens=p.gamma, **knobs)
    v = emit("spec.verify", d, model=p.target, on=tgt, positions=p.gamma + 1)
    if overlap:   # the next block, drafted while v runs, assuming all gamma are accepted
        pre = emit("spec.draft", d, model=p.draft, on=dft, tokens=p.gamma + 1,
                   speculative=True, **{k: v for k, v in knobs.items() if k == "p_min"})
    acc = emit("spec.accept", emit("spec.kv", v, model=p.target, on=tgt, action="append"))
    deps = [emit("spec.kv", acc, model=p.target, on=tgt, action="rollback")]
    if overlap:
        deps.append(emit("spec.cancel", acc, pre, what="the next draft unless all were "
                         "accepted and the bonus token equals its first token"))
    deps.append(emit("spec.kv", acc, model=p.draft, on=dft, action="rollback"))
    return emit("spec.step", *deps)


def _overlap(p, emit, prefill, dft, tgt):
    return _serial(p, emit, prefill, dft, tgt, overlap=True)


def _pipeinfer(p, emit, prefill, dft, tgt):
    ns = emit("spec.verify", prefill, model=p.target, on=tgt, positions=1, kind="nonspec",
              wait=False)
    d = emit("spec.draft", ns, model=p.draft, on=dft, tokens=p.gamma, cutoff=True)
    cp = emit("spec.kv", d, model=p.target, on=tgt, action="copy")
    v = emit("spec.verify", d, cp, model=p.target, on=tgt, positions=p.gamma, chained=True,
             wait=False)
    burst = emit("spec.burst", ns, v, max_inflight=p.max_inflight, p_accept=p.p_accept,
                 p_recovery=p.p_recovery, p_decay=p.p_decay,
                 **({"rounds": p.rounds} if p.rounds != "request" else {}))
    acc = emit("spec.accept", burst, oldest=True)
    can = emit("spec.cancel", acc, what="in-flight runs whose assumed path disagrees or "
               "that lie behind the frontier")
    commit = emit("spec.kv", acc, model=p.target, on=tgt, action="copy")
    return emit("spec.step", can, emit("spec.kv", commit, model=p.target, on=tgt,
                                       action="rollback"))


ROUNDS = ("request", "batch")   # spec.burst `rounds` (speccc/runtime/burst.py)
PROGRAMS = {"none": _none, "serial": _serial, "overlap": _overlap, "pipeinfer": _pipeinfer}
