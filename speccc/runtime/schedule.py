"""`Schedule`: what the `speculate` pass decides and the runtime executes.

It is stored in the module as a `@schedule` graph (ops `spec.*`, see
speccc/ir/ops/schedule.py): the graph attributes carry the parameters (kind, gamma,
channel groups, PipeInfer knobs), the ops the step program, readable in the IR text:

    graph @schedule() -> ("done": tensor<i1>) attributes {gamma = 4, schedule = "serial", ...} {
      %0 = spec.prefill() {model = "target", on = ["npu"]} : tensor<i1>
      ...

`Schedule.from_graph` reads it back (the runtime never sees the pass's options, only the
graph), so a printed, edited and re-parsed schedule runs as written.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from speccc.errors import SpecccError

KINDS = ("none", "serial", "overlap", "pipeinfer")
GRAPH = "schedule"
NPU, LINK = "npu", "link"


@dataclass
class Schedule:
    kind: str
    gamma: int
    draft: str = "draft"
    target: str = "target"
    hw: str = "hbm-pim"
    placement: str = "auto"           # auto: cheaper of npu/pim per op and (T, P)
    batch: int = 1
    # PIM channel groups: name -> channel ids. The draft runs on draft_on, the target's
    # layers on target_on (one group per pipeline stage).
    groups: dict[str, list[int]] = field(default_factory=dict)
    draft_on: str = ""
    target_on: list[str] = field(default_factory=list)
    p_accept: float = 0.5
    p_recovery: float = 0.0
    p_decay: float = 0.0
    max_inflight: int = 4

    @property
    def speculative(self) -> bool:
        return self.kind != "none"

    @property
    def resources(self) -> list[str]:
        return [NPU, *self.groups, LINK]

    # ------------------------------------------------------------------ IR ----------
    def attrs(self) -> dict:
        names = list(self.groups)
        return {"schedule": self.kind, "gamma": self.gamma, "draft": self.draft,
                "target": self.target, "hw": self.hw, "placement": self.placement,
                "batch": self.batch, "groups": names,
                "channels": [list(self.groups[n]) for n in names],
                "draft_on": self.draft_on, "target_on": list(self.target_on),
                "p_accept": float(self.p_accept), "p_recovery": float(self.p_recovery),
                "p_decay": float(self.p_decay), "max_inflight": self.max_inflight}

    def to_graph(self, module) -> None:
        """(Re)write `@schedule` in `module`."""
        from speccc.ir.core import Graph
        module.graphs.pop(GRAPH, None)
        g = Graph(GRAPH)
        module.add_graph(g)
        g.attrs = self.attrs()
        last = _program(self, g)
        g.set_outputs([last], ["done"])

    @staticmethod
    def from_graph(g) -> "Schedule":
        a = g.attrs
        try:
            groups = {n: [int(c) for c in ch] for n, ch in zip(a["groups"], a["channels"])}
            s = Schedule(kind=a["schedule"], gamma=int(a["gamma"]), draft=a["draft"],
                         target=a["target"], hw=a["hw"], placement=a["placement"],
                         batch=int(a["batch"]), groups=groups, draft_on=a["draft_on"],
                         target_on=list(a["target_on"]), p_accept=float(a["p_accept"]),
                         p_recovery=float(a["p_recovery"]), p_decay=float(a["p_decay"]),
                         max_inflight=int(a["max_inflight"]))
        except (KeyError, TypeError, ValueError) as e:
            raise SpecccError(f"@{GRAPH}: malformed schedule attributes ({e}); "
                              "re-run the speculate pass") from None
        s.check()
        return s

    def check(self) -> None:
        where = f"@{GRAPH}"
        if self.kind not in KINDS:
            raise SpecccError(f"schedule must be one of {', '.join(KINDS)}, got {self.kind!r}",
                              location=where)
        if self.gamma < 1:
            raise SpecccError(f"gamma must be >= 1, got {self.gamma}", location=where)
        if self.batch < 1:
            raise SpecccError(f"batch must be >= 1, got {self.batch}", location=where)
        if self.max_inflight < 1:
            raise SpecccError(f"max_inflight must be >= 1, got {self.max_inflight}",
                              location=where)
        for name in [self.draft_on, *self.target_on] if self.speculative else self.target_on:
            if name not in self.groups:
                raise SpecccError(f"unknown channel group {name!r}", location=where)
        used = [c for ch in self.groups.values() for c in ch]
        if len(used) != len(set(used)):
            raise SpecccError("channel groups overlap", location=where)


def _program(s: Schedule, g):
    """The step program as spec.* ops; returns the final token value."""
    def op(name, deps=(), **attrs):
        return g.create(name, list(deps), attrs).result

    tgt, dft = s.target_on, [s.draft_on]
    prefill = op("spec.prefill", model=s.target, on=[NPU])
    if s.speculative:
        prefill = op("spec.prefill", [prefill], model=s.draft, on=[NPU])
    if s.kind == "none":
        v = op("spec.verify", [prefill], model=s.target, on=tgt, positions=1, kind="nonspec")
        acc = op("spec.accept", [op("spec.kv", [v], model=s.target, on=tgt, action="append")])
        return op("spec.step", [acc])
    if s.kind == "pipeinfer":
        ns = op("spec.verify", [prefill], model=s.target, on=tgt, positions=1, kind="nonspec")
        d = op("spec.draft", [prefill], model=s.draft, on=dft, tokens=s.gamma, cutoff=True)
        cp = op("spec.kv", [ns], model=s.target, on=tgt, action="copy")
        v = op("spec.verify", [d, cp], model=s.target, on=tgt, positions=s.gamma,
               chained=True)
        burst = op("spec.burst", [ns, v], max_inflight=s.max_inflight, p_accept=s.p_accept,
                   p_recovery=s.p_recovery, p_decay=s.p_decay)
        acc = op("spec.accept", [burst])
        can = op("spec.cancel", [acc], what="in-flight runs whose assumed path disagrees "
                 "or that lie behind the frontier")
        commit = op("spec.kv", [acc], model=s.target, on=tgt, action="copy")
        rb = op("spec.kv", [commit], model=s.target, on=tgt, action="rollback")
        return op("spec.step", [can, rb])
    d = op("spec.draft", [prefill], model=s.draft, on=dft, tokens=s.gamma)
    v = op("spec.verify", [d], model=s.target, on=tgt, positions=s.gamma + 1)
    ap = op("spec.kv", [v], model=s.target, on=tgt, action="append")
    deps = [op("spec.accept", [ap])]
    if s.kind == "overlap":
        pre = op("spec.draft", [d], model=s.draft, on=dft, tokens=s.gamma + 1,
                 speculative=True)
        deps.append(op("spec.cancel", [deps[0], pre], what="next draft unless all "
                       "accepted and the bonus token equals its first token"))
    deps.append(op("spec.kv", [deps[0]], model=s.target, on=tgt, action="rollback"))
    deps.append(op("spec.kv", [deps[0]], model=s.draft, on=dft, action="rollback"))
    return op("spec.step", deps)
