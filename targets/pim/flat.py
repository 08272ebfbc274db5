"""Compiled flat timing: the scheduler's one-step-per-command path as a numba loop.

`Scheduler.run` uses it when nothing is accelerated or recorded (`accelerate=False`,
no trace), the listing issues at least MIN_COMMANDS commands (or compiled=True) and
numba is installed (the optional `[fast]` extra); the pure-Python path
(`Scheduler.run_plans`) stays the oracle and the fallback, and the tests compare every
timing value of the two.

How: the listing is expanded into its command instances with numpy (operand values per
instance, in program order); every distinct (command, operands) shape gets the
scheduler's own precomputed signature (`Scheduler._sig`: which `ready` entries gate it,
which it pushes, banks, counters), packed into arrays. The numba loop then does exactly
what `Scheduler._exec` does for an ordinary command: the bank-state check, the earliest
cycle over the gating entries (and the issue stamp), the channel's first-use refresh
grid, the `ready` updates, clock, completion, open rows and counters. Whatever else an
instance needs (SYNC, a refresh falling due, a tFAW window rule, a bank-state violation
to report) hands that one instance back to `Scheduler._exec` with its loop variables
bound, on the channel state synced both ways, and the loop resumes after it.
"""
from __future__ import annotations

import numpy as np

from speccc.targets.pim.steady import CommandPlan

NEED = {"none": 0, "open": 1, "closed": 2, "pc_closed": 3}
# Below this many commands the Python path is as fast as expanding the listing, and a
# process that never times a big listing flat does not pay numba's import (~0.5 s).
MIN_COMMANDS = 20_000
_jit: list = []                # [compiled issue loop] once numba has been imported


def available() -> bool:
    """numba installed (the optional [fast] extra)? Imports and compiles on first call."""
    if not _jit:
        from speccc.targets.pim.optional_numba import load_numba
        numba = load_numba()
        _jit.append(numba and numba.njit(cache=True, nogil=True)(_issue_loop_py))
    return _jit[0] is not None


def worth_it(plans) -> bool:
    return _size(plans) >= MIN_COMMANDS


def _size(plans) -> int:
    return sum(1 if isinstance(p, CommandPlan) else p.count * _size(p.body) for p in plans)


def _expand(plans, vals: dict, base: np.ndarray, out: list) -> None:
    """(CommandPlan, loop variable arrays, program-order positions) per command."""
    n, off = len(base), 0
    for p in plans:
        if isinstance(p, CommandPlan):
            out.append((p, vals, base + off))
            off += 1
            continue
        size, m = _size(p.body), p.count
        it = np.tile(np.arange(m, dtype=np.int64), n)
        inner = {k: np.repeat(x, m) for k, x in vals.items()}
        if p.var:
            inner[p.var] = it
        _expand(p.body, inner, np.repeat(base + off, m) + it * size, out)
        off += m * size


def _value(cp, name: str, vals: dict, n: int, absent: int) -> np.ndarray:
    if name not in cp.ops:
        return np.full(n, absent, np.int64)
    const, terms = cp.ops[name]
    x = np.full(n, const, np.int64)
    for var, c in terms:
        x = x + c * vals[var]
    return x


class SigTable:
    """The scheduler's signatures as padded arrays (index = signature id)."""

    def __init__(self, sched, sigs: list):
        def pad(rows, width=None):
            w = max([len(r) for r in rows] + [1]) if width is None else width
            a = np.zeros((len(rows), w), np.int64)
            for i, r in enumerate(rows):
                a[i, :len(r)] = r
            return a, np.array([len(r) for r in rows], np.int64)

        self.check, self.n_check = pad([s.check for s in sigs])
        self.upd_at, self.n_upd = pad([[i for i, _ in s.updates] for s in sigs])
        self.upd_lat, _ = pad([[lat for _, lat in s.updates] for s in sigs])
        self.banks, self.n_banks = pad([s.banks for s in sigs])
        self.cnt_at, self.n_cnt = pad([[i for i, _ in s.cnt] for s in sigs])
        self.cnt_d, _ = pad([[d for _, d in s.cnt] for s in sigs])
        self.done = np.array([s.done for s in sigs], np.int64)
        self.escape = np.array([bool(s.wins) for s in sigs], np.bool_)


def run(sched, plans) -> None:
    """Time `plans` on `sched` (no acceleration, no trace) with the compiled loop."""
    parts: list = []
    _expand(plans, {}, np.zeros(1, np.int64), parts)
    sig_ids: dict = {}
    sigs: list = []
    cols = {k: [] for k in ("order", "sig", "ch", "row", "stamp", "need", "opens", "closes",
                            "part", "local")}
    for index, (cp, vals, order) in enumerate(parts):
        n = len(order)
        if not n:
            continue
        spec = cp.spec
        if spec.kind == "SYNC":
            sig = np.full(n, -1, np.int64)
        else:
            bank = _value(cp, "bank", vals, n, -1)
            pc = bank // sched.pim.banks_per_pc if "bank" in cp.ops else _value(cp, "pc", vals, n, 0)
            keys = np.stack([pc, bank, _value(cp, "sel", vals, n, 0), _value(cp, "slot", vals, n, 0),
                             _value(cp, "acc", vals, n, 0), _value(cp, "n", vals, n, 1)], axis=1)
            # one int per key (mixed radix over the operands' ranges) for a fast unique
            lo, span = keys.min(axis=0), keys.max(axis=0) - keys.min(axis=0) + 1
            code = np.zeros(n, np.int64)
            for j in range(keys.shape[1]):
                code = code * span[j] + (keys[:, j] - lo[j])
            _, first, inv = np.unique(code, return_index=True, return_inverse=True)
            ids = []
            for pc_, bank_, sel, slot, acc, ntok in keys[first].tolist():
                key = (pc_, None if bank_ < 0 else bank_, sel, slot, acc, ntok)
                s = cp.sigs.get(key)
                if s is None:
                    s = cp.sigs[key] = sched._sig(spec.kind, spec, *key)
                if id(s) not in sig_ids:
                    sig_ids[id(s)] = len(sigs)
                    sigs.append(s)
                ids.append(sig_ids[id(s)])
            sig = np.array(ids, np.int64)[inv.reshape(-1)]
        cols["order"].append(order)
        cols["sig"].append(sig)
        cols["ch"].append(_value(cp, "ch", vals, n, 0))
        cols["row"].append(_value(cp, "row", vals, n, -1))
        stamp = cp.cmd.stamp
        cols["stamp"].append(np.full(n, -1 if stamp is None else stamp, np.int64))
        cols["need"].append(np.full(n, NEED[spec.state], np.int64))
        cols["opens"].append(np.full(n, bool(spec.opens), np.bool_))
        cols["closes"].append(np.full(n, bool(spec.closes), np.bool_))
        cols["part"].append(np.full(n, index, np.int64))
        cols["local"].append(np.arange(n, dtype=np.int64))
    if not cols["order"]:
        return
    order = np.argsort(np.concatenate(cols["order"]), kind="stable")
    inst = {k: np.concatenate(v)[order] for k, v in cols.items() if k != "order"}
    table = SigTable(sched, sigs) if sigs else None
    chans = sched.chans
    state = _arrays(chans)
    k, total = 0, len(order)
    while k < total:
        if table is not None:
            k = _jit[0](k, inst["sig"], inst["ch"], inst["row"], inst["stamp"], inst["need"],
                            inst["opens"], inst["closes"], table.check, table.n_check,
                            table.upd_at, table.upd_lat, table.n_upd, table.banks,
                            table.n_banks, table.cnt_at, table.cnt_d, table.n_cnt, table.done,
                            table.escape, *state, sched.refresh, sched.tREFI)
        if k >= total:
            break
        # one instance the loop does not handle: the scheduler's own path
        cp, vals, _ = parts[inst["part"][k]]
        env = {var: int(x[inst["local"][k]]) for var, x in vals.items()}
        touched = range(len(chans)) if cp.key is None else (int(inst["ch"][k]),)
        for ch in touched:
            _to_lists(chans[ch], state, ch)
        sched._exec(cp, env)
        for ch in touched:
            _to_arrays(chans[ch], state, ch)
        k += 1
    for ch, st in enumerate(chans):
        _to_lists(st, state, ch)


def _arrays(chans) -> tuple:
    ready = np.array([st.ready for st in chans], np.int64)
    rows = np.array([st.rows for st in chans], np.int64)
    cnt = np.array([st.cnt for st in chans], np.int64)
    floor = np.array([st.floor for st in chans], np.int64)
    done = np.array([st.done for st in chans], np.int64)
    due = np.array([st.due for st in chans], np.int64)
    active = np.array([st.active for st in chans], np.bool_)
    return ready, rows, cnt, floor, done, due, active


def _to_lists(st, state, ch: int) -> None:
    ready, rows, cnt, floor, done, due, active = state
    st.ready, st.rows, st.cnt = ready[ch].tolist(), rows[ch].tolist(), cnt[ch].tolist()
    st.floor, st.done, st.due, st.active = int(floor[ch]), int(done[ch]), int(due[ch]), bool(active[ch])
    st.opened = set()


def _to_arrays(st, state, ch: int) -> None:
    ready, rows, cnt, floor, done, due, active = state
    ready[ch], rows[ch], cnt[ch] = st.ready, st.rows, st.cnt
    floor[ch], done[ch], due[ch], active[ch] = st.floor, st.done, st.due, st.active


def _issue_loop_py(k, sig, chs, row_of, stamp_of, need_of, opens, closes, check, n_check,
                   upd_at, upd_lat, n_upd, banks, n_banks, cnt_at, cnt_d, n_cnt, done_lat,
                   escape, ready, rows, cnt, floor, done, due, active, refresh, tREFI):
    """Issue instances from k on; returns the first one it cannot (or the count)."""
    total = len(sig)
    while k < total:
        s = sig[k]
        if s < 0 or escape[s]:
            return k
        ch, row, need = chs[k], row_of[k], need_of[k]
        if need == 1:
            for j in range(n_banks[s]):
                if rows[ch, banks[s, j]] != row:
                    return k
        elif need == 2:
            for j in range(n_banks[s]):
                if rows[ch, banks[s, j]] >= 0:
                    return k
        elif need == 3:
            return k
        t = floor[ch]
        for j in range(n_check[s]):
            v = ready[ch, check[s, j]]
            if v > t:
                t = v
        stamp = stamp_of[k]
        if stamp >= 0 and stamp >= t:
            t = stamp
        if not active[ch]:
            active[ch] = True
            due[ch] = (t // tREFI + 1) * tREFI
        if refresh and t >= due[ch]:
            return k
        for j in range(n_upd[s]):
            i = upd_at[s, j]
            v = t + upd_lat[s, j]
            if ready[ch, i] < v:
                ready[ch, i] = v
        floor[ch] = t
        if t + done_lat[s] > done[ch]:
            done[ch] = t + done_lat[s]
        if opens[k]:
            for j in range(n_banks[s]):
                rows[ch, banks[s, j]] = row
        elif closes[k]:
            for j in range(n_banks[s]):
                rows[ch, banks[s, j]] = -1
        for j in range(n_cnt[s]):
            cnt[ch, cnt_at[s, j]] += cnt_d[s, j]
        k += 1
    return k
