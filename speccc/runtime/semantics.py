"""What each `spec.*` op does when the walker (machine.py) fires it: one handler per op.

    SEMANTICS["spec.verify"](machine, step, operand_values)

A handler launches engine runs through the Session's actions (prefill, launch_draft,
launch_target, kv_op, consume, cancel) and completes its op, now or when its run ends.
Values flowing along edges: a draft gives a `Block` (tokens, ids, qs), a waited verify
its finished run, an accept an `Accepted` (run, canonical length before, committed length
after), a kv op passes its operand's value on. docs/schedules.md states each rule.

Loop-carried state lives on the machine: `carry["predraft"]` (a speculative draft kept for
the next iteration), `carry["burst"]` (a burst's counters), `inflight`/`dropped` (target
runs not waited for), `carry["ns_due"]` (requests whose next non-speculative run is due).
Every handler serves the batch's requests (lanes); see session.py.
"""
from __future__ import annotations

from speccc.runtime.burst import Burst, on_result
from speccc.runtime.session import ACCEPTED, CANCELLED, mean
from speccc.runtime.values import Accepts, Block, Blocks, commit


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
        return _fresh_draft(m, step, m.active())
    if pre.done:
        return _adopt(m, step, pre)
    pre.meta["waiter"] = lambda: _adopt(m, step, pre)


def _fresh_draft(m, step, lanes, adopted=None) -> None:
    """Draft a block for `lanes` (on top of blocks already `adopted` for others)."""
    blocks = Blocks({lane.index: Block() for lane in m.active()})
    blocks.update(adopted or {})
    requests = [(lane, lane.committed, draft_length(m, step, lane)) for lane in lanes]
    requests = [r for r in requests if r[2] > 0]
    if not requests:
        return m.complete(step.index, blocks)

    def done(run):
        blocks.update(Blocks.of(run))
        m.complete(step.index, blocks)
    m.launch_draft(requests, done, cutoff=step.attrs.get("p_min") or None)


def draft_length(m, step, lane) -> int:
    """Tokens the lane drafts: `tokens` (within the context), or with `adaptive` the
    length k <= tokens maximizing expected tokens per unit time, E(k) / t(k), under the
    lane's running acceptance estimate a = (accepted + 1) / (checked + 2):
    E(k) = (1 - a^(k+1)) / (1 - a) tokens per verify (Leviathan et al.), and
    t(k) = k draft forwards + one verify of k + 1 positions, priced by the cost model at
    the lane's context (a per-request SADDLE-style controller)."""
    k_max = m.room(lane, step.attrs["tokens"])
    if not step.attrs.get("adaptive") or k_max <= 1:
        return k_max
    checked = sum(min(k + 1, c) for c, k in lane.verifies)
    a = (sum(k for _, k in lane.verifies) + 1) / (checked + 2)
    P = len(lane.committed) - 1
    t_draft = m.forward_ns("draft", 1, P)

    def goodput(k):
        tokens = (1 - a ** (k + 1)) / (1 - a) if a < 1 else k + 1
        return tokens / (k * t_draft + m.forward_ns("target", k + 1, P))
    return max(range(1, k_max + 1), key=goodput)


def _speculative_draft(m, step, args) -> None:
    """Draft after each lane's block, assuming all of it is accepted: a guess of the bonus
    token, then more (kept for the next iteration's draft, see `_adopt`)."""
    blocks = next(v for v in args if isinstance(v, Blocks))
    requests = []
    for lane in m.active():
        block = blocks.get(lane.index)
        if block is None or not block.tokens:
            continue
        path = lane.committed + list(block.tokens)
        k = step.attrs["tokens"]
        if m.max_context is not None:
            k = min(k, m.max_context - len(path))
        if k > 0:
            requests.append((lane, path, k))
    if requests:
        m.carry["predraft"] = m.launch_draft(requests, _predraft_done, kind="predraft",
                                             cutoff=step.attrs.get("p_min") or None)
    m.complete(step.index)


def _predraft_done(run) -> None:
    waiter = run.meta.pop("waiter", None)
    if waiter is not None:
        waiter()


def _adopt(m, step, pre) -> None:
    """A surviving speculative draft: in each lane whose guess held, its first token was
    the bonus (already committed) and the rest is this iteration's block; other lanes
    draft afresh."""
    adopted, fresh = {}, []
    for lane in m.active():
        lm = pre.meta["lanes"].get(lane.index)
        if lm is None or not _pre_valid(lane, lm):
            fresh.append(lane)
            continue
        prop, ids = lm["proposal"], lm["ids"]
        m.set_status(ids[:1], ACCEPTED)
        k = min(draft_length(m, step, lane), len(prop.tokens) - 1)
        m.set_status(ids[1 + k:], CANCELLED)
        if k == 0:
            fresh.append(lane)
        else:
            adopted[lane.index] = Block(prop.tokens[1:1 + k], ids[1:1 + k], prop.qs[1:1 + k])
    _fresh_draft(m, step, fresh, adopted)


def _pre_valid(lane, lm) -> bool:
    toks = lm["proposal"].tokens
    return bool(toks) and lane.committed == lm["path"] + toks[:1]


# ---------------------------------------------------------------- verify ------------
def verify(m, step, args) -> None:
    a = step.attrs
    if a.get("chained"):
        return m.carry["burst"].verify(m, step, args)
    blocks = Blocks() if a.get("kind") == "nonspec" else next(
        (v for v in args if isinstance(v, Blocks)), Blocks())
    lanes, rows = m.active(), None
    if not a.get("wait", True):   # pipeinfer: only the requests whose run is due
        due = m.carry.pop("ns_due", None)
        lanes = [lane for lane in lanes if due is None or lane.index in due]
        if not lanes:
            return m.complete(step.index)
        rows = len(lanes)
    requests = []
    for lane in lanes:
        block, c = blocks.get(lane.index, Block()), lane.committed
        requests.append((lane, len(c) - 1, [c[-1], *block.tokens], lane.canonical, c[:-1],
                         [None, *block.ids], [None, *block.qs]))
    kind = "verify" if any(b.tokens for b in blocks.values()) else "nonspec"
    if a.get("wait", True):
        def done(run):
            m.complete(step.index, run)
    else:
        def done(run):
            on_result(m)
    run = m.launch_target(kind, requests, done, n_rows=rows)
    if not a.get("wait", True):
        m.inflight.append(run)
        m.complete(step.index, run)


# ---------------------------------------------------------------- accept ------------
def accept(m, step, args) -> None:
    if step.attrs.get("oldest"):
        return m.carry["burst"].accept_oldest(m, step)
    run = next(v for v in args if v is not None and hasattr(v, "meta"))
    accepts = Accepts()
    for lane in m.lanes:
        if lane.index in run.meta["lanes"]:
            got = commit(m, run, lane)
            if got is not None:
                accepts[lane.index] = got
    m.complete(step.index, accepts)


# ---------------------------------------------------------------- kv ----------------
def kv(m, step, args) -> None:
    """append: part of the verify's forward (priced there); rollback of the target:
    clear the rejected rows of the accepted run's cache; rollback of the draft: its
    cursor rolls back lazily, before its next forward (priced in that draft run); copy
    after a draft block: the cells a chained run builds on, copied into its partition
    (the first tasks of that run); copy after an accept: the accepted cells of a run
    computed in its own partition, into the canonical cache. Entries are per request
    (the batch's mean)."""
    src, action = args[0] if args else None, step.attrs["action"]
    if action == "copy" and isinstance(src, Blocks):
        return m.complete(step.index, m.carry["burst"].copy_in(m, src))
    if isinstance(src, Accepts) and _role(m, step) == "target":
        if action == "copy":
            entries = [(a.n - 1) - a.old for a in src.values() if a.run.kind == "spec"]
        elif action == "rollback":
            entries = [a.run.meta["lanes"][i]["state"].length - (a.n - 1)
                       for i, a in src.items()]
        else:
            entries = []
        if entries:
            m.kv_op("target", action, mean(entries, m.batch))
    m.complete(step.index, src)


# ---------------------------------------------------------------- cancel ------------
def cancel(m, step, args) -> None:
    """Cancel what the committed tokens invalidate: a kept speculative draft whose
    guess failed in every lane (lanes where it failed drop their part); in-flight target
    runs whose assumed path disagrees (or that lie behind the frontier), per request:
    speculative runs with no valid row left are cancelled between ops, non-speculative
    ones run on and their result is dropped (as PipeInfer does), and so are the invalid
    rows of a batched speculative run that still has a valid one."""
    if not m.finished:
        pre = m.carry.get("predraft")
        if pre is not None:
            keep = [i for i, lm in pre.meta["lanes"].items()
                    if _pre_valid(m.lanes[i], lm)]
            for i, lm in pre.meta["lanes"].items():
                if i not in keep and keep:
                    m.set_status(lm["ids"], CANCELLED)
            if not keep:
                m.cancel(m.carry.pop("predraft"), "verify rejected a token or the bonus "
                         "differs")
    for run in list(m.inflight):
        invalid = {i: why for i in run.meta["lanes"] if (why := _invalid(m, run, i))}
        if not invalid:
            continue
        if run.kind == "spec" and len(invalid) == len(run.meta["lanes"]):
            m.inflight.remove(run)          # cancelled between ops, partitions freed
            for i in invalid:
                m.carry["burst"].lanes[i].free += 1
            m.cancel(run, next(iter(invalid.values())))
        else:   # a valid row keeps the run going: the invalid rows' results are dropped
            m.dropped.update((run, i) for i in invalid)
    m.complete(step.index)


def _invalid(m, run, i) -> str | None:
    """Why request i's part of an in-flight run is invalid (None: it is not)."""
    lane, meta = m.lanes[i], run.meta["lanes"][i]
    if m.lane_finished(lane) and not m.finished:
        return "request complete"
    n, c = len(lane.committed), lane.committed
    k = min(len(meta["path"]), n)
    if meta["start"] + len(meta["inputs"]) <= n - 1:
        return "behind the frontier"
    return None if meta["path"][:k] == c[:k] else "assumed path disagrees"


# ---------------------------------------------------------------- burst, step -------
def burst(m, step, args) -> None:
    st = m.carry.get("burst")
    if st is None:
        st = m.carry["burst"] = Burst(m.program, step, m.lanes)
    st.start(m, args[0])


def step(m, step, args) -> None:
    if not m.finished:
        m.start_iteration()


SEMANTICS = {"spec.prefill": prefill, "spec.draft": draft, "spec.verify": verify,
             "spec.accept": accept, "spec.kv": kv, "spec.cancel": cancel,
             "spec.burst": burst, "spec.step": step}
