"""The @schedule graph read as a program: its resources and its ops in order.

    program = Program.from_graph(module.graphs["schedule"])
    program.steps          # Step(index, name, attrs, operands, loc), in program order
    program.groups         # PIM channel group -> channel ids (resources besides npu, link)

Everything the runtime does comes from here: which models run on which resources (the
ops' `on`), how many tokens a draft proposes (its `tokens`), what runs after what (the
operands). The graph attribute `schedule` is only the name of the builder that wrote the
program (reports show it); an edited program runs as edited.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from speccc.errors import SpecccError

GRAPH = "schedule"
NPU, LINK = "npu", "link"


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    attrs: dict
    operands: tuple[int, ...]
    loc: str = field(default="", compare=False)   # where it was written (errors)


@dataclass
class Program:
    kind: str                      # the builder's name (a label)
    draft: str
    target: str
    hw: str
    placement: str
    batch: int
    groups: dict[str, list[int]]
    steps: list[Step] = field(default_factory=list)
    bodies: dict[int, list[int]] = field(default_factory=dict)   # burst -> the ops it repeats

    # ------------------------------------------------------------------ reading ------
    @staticmethod
    def from_graph(g) -> "Program":
        from speccc.ir.ops.schedule import burst_body
        from speccc.ir.verifier import verify_graph
        verify_graph(g)   # well-formed: resources declared, a draft before each verify, ...
        a = g.attrs
        try:
            groups = {n: [int(c) for c in ch] for n, ch in zip(a["groups"], a["channels"])}
            p = Program(kind=a["schedule"], draft=a["draft"], target=a["target"], hw=a["hw"],
                        placement=a["placement"], batch=int(a["batch"]), groups=groups)
        except (KeyError, TypeError, ValueError) as e:
            raise SpecccError(f"@{GRAPH}: malformed schedule attributes ({e}); "
                              "re-run the speculate pass") from None
        ops = g.ops()
        index = {id(op): i for i, op in enumerate(ops)}
        p.steps = [Step(i, op.name, dict(op.attrs),
                        tuple(index[id(v.op)] for v in op.operands), op.where())
                   for i, op in enumerate(ops)]
        p.bodies = {index[id(op)]: sorted(index[id(o)] for o in burst_body(op))
                    for op in ops if op.name == "spec.burst"}
        p._check()
        return p

    def _check(self) -> None:
        where = f"@{GRAPH}"
        if self.batch < 1:
            raise SpecccError(f"batch must be >= 1, got {self.batch}", location=where)
        used = [c for ch in self.groups.values() for c in ch]
        if len(used) != len(set(used)):
            raise SpecccError("channel groups overlap", location=where)
        for model in (self.target, self.draft):
            ons = {tuple(s.attrs["on"]) for s in self.steps
                   if s.attrs.get("model") == model and s.name != "spec.prefill"}
            if len(ons) > 1:
                raise SpecccError(f"@{model} runs on different resources in different ops: "
                                  f"{' vs '.join(map(str, sorted(ons)))}", location=where)

    # ------------------------------------------------------------------ derived ------
    def on(self, model: str) -> list[str]:
        """The resources `model`'s ops run on (one group per pipeline stage)."""
        return next((list(s.attrs["on"]) for s in self.steps
                     if s.attrs.get("model") == model and s.name != "spec.prefill"), [])

    @property
    def speculative(self) -> bool:
        return any(s.name == "spec.draft" for s in self.steps)

    @property
    def gamma(self) -> int:
        """The longest block a (non-speculative) draft op proposes; 0 without drafts."""
        return max((s.attrs["tokens"] for s in self.steps
                    if s.name == "spec.draft" and not s.attrs.get("speculative")), default=0)

    @property
    def resources(self) -> list[str]:
        return [NPU, *self.groups, LINK]

    @property
    def prologue(self) -> list[int]:
        return [s.index for s in self.steps if s.name == "spec.prefill"]

    @property
    def body(self) -> list[int]:
        """Ops the walker fires each iteration (burst bodies are fired by their burst)."""
        owned = {i for b in self.bodies.values() for i in b}
        return [s.index for s in self.steps
                if s.name != "spec.prefill" and s.index not in owned]
