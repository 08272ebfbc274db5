"""Schedule ops: the `@schedule` graph the `speculate` pass writes and speccc.runtime runs.

Each op is one phase of a speculative decoding step (prefill, draft, verify, accept,
KV append/rollback/copy, cancel, burst). Operands and results are control tokens
(`tensor<i1>` scalars): an edge says "after". The graph is a description, not a
dataflow program: the reference interpreter refuses to execute it; the discrete-event
runtime (speccc/runtime) reads its attributes (see docs/schedules.md).
"""
from __future__ import annotations

from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.types import DType, TensorType

TOKEN = TensorType((), DType.bool)


def _infer(ctx):
    for i, t in enumerate(ctx.types):
        if t != TOKEN:
            ctx.fail(f"operand {i} must be a control token {TOKEN}, got {t}")
    return [TOKEN]


def _ref(ins, attrs):
    from speccc.errors import SpecccError
    raise SpecccError("schedule ops describe a schedule; run it with `speccc run`, "
                      "not the reference interpreter")


def _cost(ctx, out):
    return Cost(0, 0, 0)


_ON = Attr("strs", [])  # resource groups the phase runs on

_SCHEMAS = {
    "spec.prefill": ({"model": Attr("str"), "on": _ON},
                     "prompt pass of `model` (T = prompt length, P = 0), on the NPU"),
    "spec.draft": ({"model": Attr("str"), "on": _ON, "tokens": Attr("int"),
                    "speculative": Attr("bool", False), "cutoff": Attr("bool", False)},
                   "draft up to `tokens` tokens one forward at a time; speculative: runs "
                   "while the previous verify is in flight; cutoff: stops below the "
                   "confidence cutoff"),
    "spec.verify": ({"model": Attr("str"), "on": _ON, "positions": Attr("int"),
                     "kind": Attr("str", "spec"), "chained": Attr("bool", False)},
                    "one target pass over `positions` tokens; kind spec|nonspec; chained: "
                    "its KV prefix is the previous in-flight run's partition"),
    "spec.accept": ({"rule": Attr("str", "greedy|rejection")},
                    "greedy token match, or rejection sampling min(1, p/q) with the "
                    "residual max(0, p - q) when sampling"),
    "spec.kv": ({"model": Attr("str"), "on": _ON, "action": Attr("str")},
                "KV-cache operation append|rollback|copy on the device holding the cache"),
    "spec.cancel": ({"what": Attr("str")}, "cancel in-flight work that a result invalidates"),
    "spec.burst": ({"max_inflight": Attr("int"), "p_accept": Attr("float"),
                    "p_recovery": Attr("float"), "p_decay": Attr("float")},
                   "launch speculative runs back to back while p_accept + iter*p_recovery "
                   "- n_rejected*p_decay < 1 and a KV partition is free"),
    "spec.step": ({"repeat": Attr("str", "until max_new_tokens")},
                  "end of one decoding step; the step repeats"),
}

for _name, (_attrs, _doc) in _SCHEMAS.items():
    define(_name, (0, None), _infer, _ref, attrs=_attrs, cost=_cost, doc=_doc)
