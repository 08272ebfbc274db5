"""What each `spec.*` op does when the walker (machine.py) fires it: one handler per op.

    SEMANTICS["spec.verify"](machine, step, operand_values)

A handler launches engine runs through the Session's actions (prefill, launch_draft,
launch_target, kv_op, consume, cancel) and completes its op, now or when its run ends.
Values flowing along edges: a draft gives a `Block` (tokens, ids, qs), a waited verify
its finished run, an accept an `Accepted` (run, canonical length before, committed length
after), a kv op passes its operand's value on. docs/schedules.md states each rule.

Loop-carried state lives on the machine: `carry["predraft"]` (a speculative draft kept for
the next iteration), `carry["burst"]` (a burst's counters), `inflight`/`dropped` (target
runs not waited for). Batched requests (batch > 1) use BATCH_SEMANTICS (batch.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from speccc.runtime.session import ACCEPTED, CANCELLED


@dataclass
class Block:
    """Draft tokens to verify, with their status ids and draft distributions."""
    tokens: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    qs: list = field(default_factory=list)

    @staticmethod
    def of(run) -> "Block":
        prop = run.meta["proposal"]
        return Block(prop.tokens, run.meta["ids"], prop.qs)


@dataclass
class Accepted:
    run: object
    old: int   # canonical target cache length before the accept
    n: int     # committed tokens after it


def _role(m, step) -> str:
    return "target" if step.attrs["model"] == m.program.target else "draft"


# ---------------------------------------------------------------- prefill -----------
def prefill(m, step, args) -> None:
    m.prefill(lambda: m.complete(step.index))


# ---------------------------------------------------------------- draft -------------
def draft(m, step, args) -> None:
    if step.attrs.get("speculative"):
        return _speculative_draft(m, step, args)
    burst = m.carry.get("burst")
    if burst is not None and burst.owns(step.index):
        return burst.draft(m, step)
    pre = m.carry.pop("predraft", None)
    if pre is None:
        return _fresh_draft(m, step)
    if pre.done:
        return _adopt(m, step, pre)
    pre.meta["waiter"] = lambda: _adopt(m, step, pre)


def _fresh_draft(m, step) -> None:
    k = m.room(step.attrs["tokens"])
    if k == 0:
        return m.complete(step.index, Block())
    m.launch_draft(m.committed, k, lambda run: m.complete(step.index, Block.of(run)))


def _speculative_draft(m, step, args) -> None:
    """Draft after the operand's block, assuming all of it is accepted: a guess of the
    bonus token, then more (kept for the next iteration's draft, see `_adopt`)."""
    block = next(v for v in args if isinstance(v, Block))
    if block.tokens:
        path = m.committed + list(block.tokens)
        k = step.attrs["tokens"]
        if m.max_context is not None:
            k = min(k, m.max_context - len(path))
        if k > 0:
            m.carry["predraft"] = m.launch_draft(path, k, _predraft_done, kind="predraft")
    m.complete(step.index)


def _predraft_done(run) -> None:
    waiter = run.meta.pop("waiter", None)
    if waiter is not None:
        waiter()


def _adopt(m, step, pre) -> None:
    """A surviving speculative draft: its first token was the bonus (already committed),
    the rest is this iteration's block."""
    prop, ids = pre.meta["proposal"], pre.meta["ids"]
    m.set_status(ids[:1], ACCEPTED)
    k = min(m.room(step.attrs["tokens"]), len(prop.tokens) - 1)
    m.set_status(ids[1 + k:], CANCELLED)
    if k == 0:
        return _fresh_draft(m, step)
    m.complete(step.index, Block(prop.tokens[1:1 + k], ids[1:1 + k], prop.qs[1:1 + k]))


def _pre_valid(m, pre) -> bool:
    toks = pre.meta["proposal"].tokens
    return bool(toks) and m.committed == pre.meta["path"] + toks[:1]


# ---------------------------------------------------------------- verify ------------
def verify(m, step, args) -> None:
    a = step.attrs
    if a.get("chained"):
        return m.carry["burst"].verify(m, step, args)
    block = Block() if a.get("kind") == "nonspec" else next(
        (v for v in args if isinstance(v, Block)), Block())
    c = m.committed
    if a.get("wait", True):
        def done(run):
            m.complete(step.index, run)
    else:
        def done(run):
            on_result(m)
    run = m.launch_target("verify" if block.tokens else "nonspec", len(c) - 1,
                          [c[-1], *block.tokens], m.canonical, c[:-1], done,
                          ids=[None, *block.ids], qs=[None, *block.qs])
    if not a.get("wait", True):
        m.inflight.append(run)
        m.complete(step.index, run)


def on_result(m) -> None:
    """A target run nobody waits for finished: a burst waiting for results goes on."""
    burst = m.carry.get("burst")
    if burst is not None and not burst.busy:
        burst.pump(m)


# ---------------------------------------------------------------- accept ------------
def accept(m, step, args) -> None:
    if step.attrs.get("oldest"):
        return m.carry["burst"].accept_oldest(m, step)
    run = next(v for v in args if v is not None and hasattr(v, "meta"))
    m.complete(step.index, commit(m, run))


def commit(m, run) -> Accepted | None:
    """Accept/reject a finished target run; its cache becomes canonical up to the
    frontier. None when the run is invalid (nothing committed)."""
    old = m.canonical.length
    if m.consume(run) is None:
        return None
    n = len(m.committed)
    m.canonical = run.meta["state"].truncate(n - 1)
    return Accepted(run, old, n)


# ---------------------------------------------------------------- kv ----------------
def kv(m, step, args) -> None:
    """append: part of the verify's forward (priced there); rollback of the target:
    clear the rejected rows of the accepted run's cache; rollback of the draft: its
    cursor rolls back lazily, before its next forward (priced in that draft run); copy
    after a draft block: the cells a chained run builds on, copied into its partition
    (the first tasks of that run); copy after an accept: the accepted cells of a run
    computed in its own partition, into the canonical cache."""
    src, action = args[0] if args else None, step.attrs["action"]
    if action == "copy" and isinstance(src, Block):
        return m.complete(step.index, m.carry["burst"].copy_in(m, src))
    if isinstance(src, Accepted) and _role(m, step) == "target":
        if action == "copy" and src.run.kind == "spec":
            m.kv_op("target", "copy", (src.n - 1) - src.old)
        elif action == "rollback":
            m.kv_op("target", "rollback", src.run.meta["state"].length - (src.n - 1))
    m.complete(step.index, src)


# ---------------------------------------------------------------- cancel ------------
def cancel(m, step, args) -> None:
    """Cancel what the committed tokens invalidate: a kept speculative draft whose
    assumption failed; in-flight target runs whose assumed path disagrees (or that lie
    behind the frontier): speculative ones are cancelled between ops, non-speculative
    ones run on and their result is dropped (as PipeInfer does)."""
    if not m.finished:
        pre = m.carry.get("predraft")
        if pre is not None and not _pre_valid(m, pre):
            m.cancel(m.carry.pop("predraft"), "verify rejected a token or the bonus differs")
    n, c = len(m.committed), m.committed
    for run in list(m.inflight):
        meta = run.meta
        k = min(len(meta["path"]), n)
        behind = meta["start"] + len(meta["inputs"]) <= n - 1
        if not behind and meta["path"][:k] == c[:k]:
            continue
        if run.kind == "spec":
            m.inflight.remove(run)
            m.carry["burst"].free += 1
            m.cancel(run, "assumed path disagrees" if not behind else "behind the frontier")
        else:
            m.dropped.add(run)
    m.complete(step.index)


# ---------------------------------------------------------------- burst, step -------
def burst(m, step, args) -> None:
    from speccc.runtime.burst import Burst
    st = m.carry.get("burst")
    if st is None:
        st = m.carry["burst"] = Burst(m.program, step)
    st.start(m)


def step(m, step, args) -> None:
    m.complete(step.index)
    if not m.finished:
        m.start_iteration()


SEMANTICS = {"spec.prefill": prefill, "spec.draft": draft, "spec.verify": verify,
             "spec.accept": accept, "spec.kv": kv, "spec.cancel": cancel,
             "spec.burst": burst, "spec.step": step}
