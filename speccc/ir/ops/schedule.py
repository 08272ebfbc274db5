"""Schedule ops: the `@schedule` program the `speculate` pass writes and speccc.runtime runs.

Each op is one action of a speculative decoding step (prefill, draft, verify, accept,
KV append/rollback/copy, cancel, burst, step), on the resources its `on` attribute names.
Operands and results are control tokens (`tensor<i1>` scalars): an edge says "after, and
using the result of". The runtime interprets the ops (speccc/runtime/semantics.py, one
handler per op); docs/schedules.md gives their semantics. The reference interpreter
refuses to execute them.

Beyond the type rules, each op checks that the program is well formed (a verify has a
draft before it, resources are declared in the graph's `groups`, positions match the
draft length), so an edited schedule fails at parse/verify time with the op's location,
not at run time.
"""
from __future__ import annotations

from speccc.errors import VerifyError
from speccc.ir.opdefs import Attr, Cost, define
from speccc.ir.types import DType, TensorType

TOKEN = TensorType((), DType.bool)
NPU = "npu"


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


# ---------------------------------------------------------------- well-formedness ---
def ancestors(op) -> list:
    """Ops `op` depends on, nearest first (breadth-first over operands)."""
    seen, out, todo = set(), [], [v.op for v in op.operands if v.op is not None]
    while todo:
        o = todo.pop(0)
        if id(o) in seen:
            continue
        seen.add(id(o))
        out.append(o)
        todo += [v.op for v in o.operands if v.op is not None]
    return out


def producing_draft(op):
    """The non-speculative spec.draft whose tokens `op` consumes, or None."""
    return next((a for a in ancestors(op) if a.name == "spec.draft"
                 and not a.attrs.get("speculative")), None)


def _fail(op, msg):
    raise VerifyError(f"{op.name}: {msg}", location=op.where())


def _check_resources(op) -> None:
    g = op.graph
    declared = [NPU, *((g.attrs.get("groups") or []) if g is not None else [])]
    for name in op.attrs.get("on") or []:
        if name not in declared:
            _fail(op, f"unknown resource {name!r} (the graph declares {', '.join(declared)})")


def _check_model(op) -> None:
    g = op.graph
    models = [g.attrs.get(k) for k in ("target", "draft")] if g is not None else []
    if op.attrs["model"] not in models:
        _fail(op, f"unknown model {op.attrs['model']!r} (the graph's target/draft are "
                  f"{', '.join(repr(m) for m in models if m)})")


def _check_prefill(op) -> None:
    _check_resources(op)
    if op.graph is not None and op.attrs["model"] != op.graph.attrs.get("target"):
        _fail(op, "only the target has a prefill op (the draft's prompt pass is its first "
                  "spec.draft forward)")


def _check_draft(op) -> None:
    _check_resources(op)
    _check_model(op)
    if op.attrs["tokens"] < 1:
        _fail(op, f"tokens must be >= 1, got {op.attrs['tokens']}")
    if not 0.0 <= op.attrs.get("p_min", 0.0) <= 1.0:
        _fail(op, f"p_min must be in [0, 1], got {op.attrs['p_min']}")
    if op.attrs.get("speculative") and producing_draft(op) is None:
        _fail(op, "a speculative draft drafts after another spec.draft's tokens; it has "
                  "none before it")


def _check_verify(op) -> None:
    _check_resources(op)
    _check_model(op)
    kind, n = op.attrs.get("kind", "spec"), op.attrs["positions"]
    if kind not in ("spec", "nonspec"):
        _fail(op, f"kind must be spec or nonspec, got {kind!r}")
    draft = producing_draft(op)
    if kind == "nonspec":
        if n != 1:
            _fail(op, f"a nonspec verify checks 1 position, got positions = {n}")
        return
    if draft is None:
        _fail(op, "a verify needs a spec.draft before it (or kind = \"nonspec\")")
    want = draft.attrs["tokens"] + (0 if op.attrs.get("chained") else 1)
    if n != want:
        _fail(op, f"positions = {n} but the draft before it has tokens = "
                  f"{draft.attrs['tokens']}: a {'chained ' if op.attrs.get('chained') else ''}"
                  f"verify checks {want}")


def _check_accept(op) -> None:
    names = {a.name for a in ancestors(op)}
    need = "spec.burst" if op.attrs.get("oldest") else "spec.verify"
    if need not in names:
        _fail(op, f"an accept{' of the oldest result' if op.attrs.get('oldest') else ''} "
                  f"needs a {need} before it")


def _check_kv(op) -> None:
    _check_resources(op)
    _check_model(op)
    if op.attrs["action"] not in ("append", "rollback", "copy"):
        _fail(op, f"action must be append, rollback or copy, got {op.attrs['action']!r}")


def _check_burst(op) -> None:
    if len(op.operands) != 2:
        _fail(op, "takes (its start, the last op of its body)")
    body = burst_body(op)
    if not any(o.name == "spec.draft" for o in body) or \
            not any(o.name == "spec.verify" and o.attrs.get("chained") for o in body):
        _fail(op, "its body (ops between its two operands) needs a spec.draft and a "
                  "chained spec.verify")
    if op.attrs["max_inflight"] < 1:
        _fail(op, f"max_inflight must be >= 1, got {op.attrs['max_inflight']}")
    if op.attrs.get("rounds", "request") not in ("request", "batch"):
        _fail(op, f"rounds must be request or batch, got {op.attrs['rounds']!r}")


def _check_step(op) -> None:
    g = op.graph
    if g is not None and sum(o.name == "spec.step" for o in g.ops()) != 1:
        _fail(op, "a schedule has exactly one spec.step (the end of its loop body)")


def burst_body(burst) -> list:
    """Ops a spec.burst repeats: between its first operand (exclusive) and itself."""
    start = burst.operands[0].op
    before = {id(o) for o in ancestors(start)} | {id(start)}
    return [o for o in ancestors(burst) if id(o) not in before]


_ON = Attr("strs", [])  # resources the action runs on: "npu" or channel groups

_SCHEMAS = {
    "spec.prefill": ({"model": Attr("str"), "on": _ON}, _check_prefill,
                     "prompt pass of the target (T = prompt length, P = 0); runs once"),
    "spec.draft": ({"model": Attr("str"), "on": _ON, "tokens": Attr("int"),
                    "speculative": Attr("bool", False), "cutoff": Attr("bool", False),
                    "p_min": Attr("float", 0.0), "adaptive": Attr("bool", False)},
                   _check_draft,
                   "draft up to `tokens` tokens, one forward each; speculative: draft after "
                   "the operand draft's tokens while they are verified; cutoff: stop below "
                   "the burst's confidence cutoff; p_min: stop below this confidence; "
                   "adaptive: each request's length from its running acceptance estimate"),
    "spec.verify": ({"model": Attr("str"), "on": _ON, "positions": Attr("int"),
                     "kind": Attr("str", "spec"), "chained": Attr("bool", False),
                     "wait": Attr("bool", True)}, _check_verify,
                    "one target pass over `positions` tokens; nonspec: the newest token "
                    "alone; chained: builds on the newest in-flight run; wait = false: "
                    "the result joins the in-flight queue"),
    "spec.accept": ({"rule": Attr("str", "greedy|rejection"), "oldest": Attr("bool", False)},
                    _check_accept,
                    "greedy token match or rejection sampling; commits the tokens; oldest: "
                    "takes the oldest in-flight result"),
    "spec.kv": ({"model": Attr("str"), "on": _ON, "action": Attr("str")}, _check_kv,
                "KV-cache operation append|rollback|copy on the group holding the cache"),
    "spec.cancel": ({"what": Attr("str")}, None,
                    "cancel in-flight work that the committed tokens invalidate"),
    "spec.burst": ({"max_inflight": Attr("int"), "p_accept": Attr("float"),
                    "p_recovery": Attr("float"), "p_decay": Attr("float"),
                    "rounds": Attr("str", "request")}, _check_burst,
                   "repeat its body while p_accept + iter*p_recovery - n_rejected*p_decay "
                   "< 1 and a KV partition is free; done when a result is waiting; "
                   "rounds (batch > 1): request = each round serves one request "
                   "round-robin, batch = every request that may speculate"),
    "spec.step": ({"repeat": Attr("str", "until max_new_tokens")}, _check_step,
                  "end of one decoding step; the ops after the prefill repeat"),
}

for _name, (_attrs, _check, _doc) in _SCHEMAS.items():
    define(_name, (0, None), _infer, _ref, attrs=_attrs, cost=_cost, doc=_doc,
           **({"verify": _check} if _check else {}))
