"""Vectorised functional engine: loop bodies run as numpy over all their iterations.

The per-command engine (functional.FunctionalState with engine="command") steps through
every iteration of every loop; it stays as the oracle. This one, per *region* (a run of
listing nodes with the enclosing loop variables bound), expands every command into all
its instances at once (operand values as int arrays) and runs the region
*command-major*: every instance of the first command, then of the second, and so on.

That equals program order unless an instance of a later command B comes before an
instance of an earlier command A in program order (an earlier iteration of a loop they
share) and both touch one location, one of them writing. `_conflict` checks exactly
that, per resource class (global-buffer slot, accumulator register of one PU, bank
column, host output). Repeats within one command keep program order too: WRGB keeps
the last write of a slot, MAC accumulates repeated registers one occurrence at a time
(so each register still rounds after every MAC, in order); RDMAC/AF/EW repeating a
register are a conflict. A region that conflicts is split: its nodes run one by one and
a conflicting loop runs iteration by iteration, each iteration's body a region again.
Analyses are cached per (nodes, bound variables), so repeated runs of a kernel's
programs pay only for the numpy work. Results are bit-identical to the per-command
engine (tests/pim/test_pim_vectorised.py runs both on every preset and precision).
"""
from __future__ import annotations

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.isa import OPS, ew_slots
from speccc.targets.pim.listing import Command, Loop

NO_EFFECT = ("ACT", "ACTab", "PRE", "PREab", "PREA", "REF", "SYNC")  # timing only
# kind -> {resource class: "r" read, "w" write, "rw" read-modify-write}
EFFECTS = {
    "WRGB": {"gb": "w"}, "WR": {"mem": "w"}, "RD": {"mem": "r", "out": "w"},
    "MAC": {"mem": "r", "gb": "r", "acc": "rw"}, "MACab": {"mem": "r", "gb": "r", "acc": "rw"},
    "RDMAC": {"acc": "rw", "out": "w"}, "AF": {"acc": "rw"},
    "EWMUL": {"acc": "rw", "gb": "r"}, "EWADD": {"acc": "rw", "gb": "r"},
}
REPEAT_OK = ("WRGB", "WR", "RD", "MAC", "MACab")     # repeated keys handled in order


class VecCmd:
    """All instances of one command in a region, in program order."""
    __slots__ = ("cmd", "kind", "n", "ops", "path", "its", "keys", "banks", "plan", "rows",
                 "gather", "stacked")

    def rank(self, depth: int) -> np.ndarray:
        """Mixed-radix index of each instance over the first `depth` enclosing loops."""
        r = np.zeros(self.n, np.int64)
        for level in range(depth):
            r = r * self.path[level][1] + self.its[level]
        return r


def _flatten(nodes, env: dict, n: int, vals: dict, path: tuple, its: list, out: list) -> None:
    """Expand nodes under `n` outer instances: vals var -> array(n), its per level."""
    for node in nodes:
        if isinstance(node, Command):
            if OPS[node.op].kind in NO_EFFECT:
                continue
            v = VecCmd()
            v.cmd, v.kind, v.n, v.path, v.its = node, OPS[node.op].kind, n, path, its
            v.ops = {}
            for name, a in node.args:
                if isinstance(a, str):
                    v.ops[name] = a
                    continue
                x = np.full(n, a.const, np.int64)
                for var, c in a.terms:
                    x = x + c * (vals[var] if var in vals else env[var])
                v.ops[name] = x
            out.append(v)
        elif isinstance(node, Loop):
            m = node.count
            inner = {k: np.repeat(x, m) for k, x in vals.items()}
            it = np.tile(np.arange(m, dtype=np.int64), n)
            if node.var:
                inner[node.var] = it
            _flatten(node.body, env, n * m, inner, path + ((id(node), m),),
                     [np.repeat(x, m) for x in its] + [it], out)


def _keys(st, v: VecCmd) -> None:
    """Resource keys each instance touches, per class: v.keys[cls] (n, k) int64."""
    p, o = st.pim, v.ops
    all_bank = OPS[v.cmd.op].all_bank
    ch = o.get("ch", np.zeros(v.n, np.int64))
    pc = o["bank"] // p.banks_per_pc if "bank" in o else o.get("pc", np.zeros(v.n, np.int64))
    keys = {}
    if v.kind in ("MAC", "MACab"):
        sel = o.get("sel", np.zeros(v.n, np.int64))
        if all_bank:        # the `sel` set of the pseudo-channel: one bank per PU
            S = p.pu.banks_per_pu
            banks = (pc * p.banks_per_pc + sel)[:, None] + S * np.arange(p.banks_per_pc // S)
        else:
            banks = o["bank"][:, None]
        v.banks = banks
        pus = (banks % p.banks_per_pc) // p.pu.banks_per_pu
        keys["acc"] = (((ch * p.pseudo_channels + pc) * p.acc_total + o["acc"])[:, None]
                       * p.pus_per_pc + pus)
        keys["gb"] = ((ch * p.pseudo_channels + pc) * p.gb_slots_total + o["slot"])[:, None]
        keys["mem"] = (((ch[:, None] * p.banks_per_channel + banks) * p.rows + o["row"][:, None])
                       * p.columns + o["col"][:, None])
    if v.kind in ("RDMAC", "AF", "EWMUL", "EWADD"):
        base = ((ch * p.pseudo_channels + pc) * p.acc_total + o["acc"]) * p.pus_per_pc
        keys["acc"] = base[:, None] + np.arange(p.pus_per_pc)
    if v.kind in ("EWMUL", "EWADD"):
        keys["gb"] = ((ch * p.pseudo_channels + pc) * p.gb_slots_total + o["slot"])[:, None] + np.arange(ew_slots(p))
    if v.kind == "WRGB":
        keys["gb"] = ((ch * p.pseudo_channels + pc) * p.gb_slots_total + o["slot"])[:, None]
    if v.kind in ("WR", "RD"):
        keys["mem"] = (((ch * p.banks_per_channel + o["bank"]) * p.rows + o["row"]) * p.columns + o["col"])[:, None]
    if v.kind in ("RD", "RDMAC"):
        keys["out"] = o["dst"][:, None]
    v.keys = keys


def _common_depth(a: VecCmd, b: VecCmd) -> int:
    d = 0
    while d < min(len(a.path), len(b.path)) and a.path[d][0] == b.path[d][0]:
        d += 1
    return d


def _conflict(a: VecCmd, b: VecCmd) -> bool:
    """Does an instance of b (later in the region) precede a conflicting instance of a?"""
    d = _common_depth(a, b)
    if d == 0:
        return False
    ea, eb = EFFECTS[a.kind], EFFECTS[b.kind]
    ra = rb = None
    for cls in ea.keys() & eb.keys():
        if "w" not in ea[cls] + eb[cls]:
            continue
        ka, kb = a.keys[cls], b.keys[cls]
        if not np.intersect1d(ka, kb).size:
            continue
        if ra is None:
            ra, rb = a.rank(d), b.rank(d)
        # latest a-instance and earliest b-instance per key
        ua, ia = np.unique(ka.reshape(-1), return_inverse=True)
        amax = np.full(len(ua), -1, np.int64)
        np.maximum.at(amax, ia, np.repeat(ra, ka.shape[1]))
        pos = np.searchsorted(ua, kb.reshape(-1))
        pos = np.minimum(pos, len(ua) - 1)
        hit = ua[pos] == kb.reshape(-1)
        if np.any(np.repeat(rb, kb.shape[1])[hit] < amax[pos[hit]]):
            return True
    return False


def _self_conflict(v: VecCmd) -> bool:
    if v.kind in REPEAT_OK:
        return False
    k = v.keys["acc"].reshape(-1)
    return len(np.unique(k)) != len(k)


def _occurrences(keys: np.ndarray) -> np.ndarray:
    """For each key (in order), how many equal keys come before it."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    runs = np.diff(np.r_[start, len(sk)])
    occ_sorted = np.arange(len(sk)) - np.repeat(start, runs)
    occ = np.empty_like(occ_sorted)
    occ[order] = occ_sorted
    return occ


def _last_of_each(keys: np.ndarray) -> np.ndarray:
    """Indices of the last occurrence of every key (a later write wins)."""
    _, idx = np.unique(keys[::-1], return_index=True)
    return np.sort(len(keys) - 1 - idx)


def compile_region(st, nodes, env: dict) -> list | None:
    """The region's VecCmds if command-major order is exact, else None (split it)."""
    cmds: list = []
    _flatten(nodes, env, 1, {}, (), [], cmds)
    for v in cmds:
        _keys(st, v)
        if _self_conflict(v):
            return None
    for i, a in enumerate(cmds):
        for b in cmds[i + 1:]:
            if _conflict(a, b):
                return None
    for v in cmds:
        _prepare(st, v)
    return cmds


def _prepare(st, v: VecCmd) -> None:
    """Index arrays the run needs, computed once."""
    p, o = st.pim, v.ops
    if v.kind in ("MAC", "MACab"):
        acc = v.keys["acc"].reshape(-1)
        occ = _occurrences(acc)
        v.plan = [np.flatnonzero(occ == k) for k in range(int(occ.max()) + 1)] if len(occ) else []
        # the bank rows the MACs read: distinct (ch, bank, row) once, then numpy indexing
        nb = v.banks.shape[1]
        rk = list(zip(np.repeat(o["ch"], nb).tolist(), v.banks.reshape(-1).tolist(),
                      np.repeat(o["row"], nb).tolist()))
        uniq = {k: i for i, k in enumerate(dict.fromkeys(rk))}
        v.rows = list(uniq)
        v.gather = (np.fromiter((uniq[k] for k in rk), np.int64, len(rk)), np.repeat(o["col"], nb))
        v.stacked = (-1, None)
    elif v.kind == "WRGB":
        v.plan = _last_of_each(v.keys["gb"].reshape(-1))
    else:
        v.plan = None


class VectorEngine:
    """Runs programs on a FunctionalState (its arrays and rounding), region by region."""

    def __init__(self, st):
        self.st = st
        self.cache: dict = {}

    def run(self, program) -> None:
        self._nodes(program.body, program.body, {}, program.name)

    def _region(self, owner, nodes, env):
        """Cached by the identity of `owner` (a body tuple or a node), which the cache
        keeps alive so the id is never reused."""
        key = (id(owner), tuple(sorted(env.items())))
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = (owner, compile_region(self.st, nodes, env))
        return hit[1]

    def _nodes(self, owner, nodes, env, name) -> None:
        cmds = self._region(owner, nodes, env)
        if cmds is not None:
            for v in cmds:
                EXEC[v.kind](self.st, v, name)
            return
        for node in nodes:
            if isinstance(node, Command) or self._region(node, (node,), env) is not None:
                self._nodes(node, (node,), env, name)
            elif isinstance(node, Loop):
                for i in range(node.count):
                    inner = {**env, node.var: i} if node.var else env
                    self._nodes(node.body, node.body, inner, name)


# ------------------------------------------------------------------ effects ----
def _bursts(st, v: VecCmd, name: str) -> np.ndarray:
    src = v.ops["src"]
    bad = np.flatnonzero(src >= len(st.host_in))
    if len(bad):
        c = v.cmd
        raise SpecccError(f"{c.op} reads host input burst {int(src[bad[0]])}, but only "
                          f"{len(st.host_in)} were provided", location=f"{name}:{c.line}:{c.col}")
    from speccc.targets.pim.functional import round_to
    return round_to(st.store, st.host_in[src])


def _pc(st, o) -> np.ndarray:
    return o["bank"] // st.pim.banks_per_pc if "bank" in o else o["pc"]


def _wrgb(st, v, name) -> None:
    last, o = v.plan, v.ops
    st.gb[o["ch"][last], o["pc"][last], o["slot"][last]] = _bursts(st, v, name)[last]


def _wr(st, v, name) -> None:
    vals, o = _bursts(st, v, name), v.ops
    for i, (ch, bank, row, col) in enumerate(zip(*(o[k].tolist() for k in ("ch", "bank", "row", "col")))):
        key = (ch, bank, row)
        r = st.rows.get(key)
        r = st.rows[key] = r.copy() if r is not None else st._zero_row.copy()
        r[col] = vals[i]
    st.version += 1


def _rd(st, v, name) -> None:
    o = v.ops
    for ch, bank, row, col, dst in zip(*(o[k].tolist() for k in ("ch", "bank", "row", "col", "dst"))):
        st.host_out[dst] = st.row(ch, bank, row)[col].copy()


def _mac(st, v, name) -> None:
    from speccc.targets.pim.functional import round_to
    p, o = st.pim, v.ops
    ch, pc = o["ch"], _pc(st, o)
    version, rows = v.stacked
    if version != st.version:          # bank contents changed since the last stack
        rows = np.stack([st.row(*k) for k in v.rows])
        v.stacked = (st.version, rows)
    idx, cols = v.gather
    data = rows[idx, cols].reshape(v.n, v.banks.shape[1], -1)
    prods = data * st.gb[ch, pc, o["slot"]][:, None, :]
    flat = st.acc.reshape(-1, p.acc_lanes)              # a view: (ch, pc, acc, pu) rows
    keys = v.keys["acc"].reshape(-1)
    if p.pu.reduce == "tree":
        add = prods.sum(axis=2, dtype=np.float32).reshape(-1)
        for sel in v.plan:
            k = keys[sel]
            flat[k, 0] = round_to(st.accd, flat[k, 0] + add[sel])
    else:
        add = prods.reshape(-1, prods.shape[-1])
        for sel in v.plan:
            k = keys[sel]
            flat[k] = round_to(st.accd, flat[k] + add[sel])


def _rdmac(st, v, name) -> None:
    from speccc.targets.pim.functional import round_to
    o = v.ops
    ch, pc, acc = o["ch"], o["pc"], o["acc"]
    vals = round_to(st.outd, st.acc[ch, pc, acc])
    for i, dst in enumerate(o["dst"].tolist()):
        st.host_out[dst] = vals[i]
    st.acc[ch, pc, acc] = 0


def _af(st, v, name) -> None:
    from speccc.targets.pim.functional import AF, round_to
    o = v.ops
    ch, pc, acc = o["ch"], o["pc"], o["acc"]
    with np.errstate(over="ignore"):
        st.acc[ch, pc, acc] = round_to(st.accd, AF[o["fn"]](st.acc[ch, pc, acc].astype(np.float32)))


def _ew(st, v, name) -> None:
    from speccc.targets.pim.functional import round_to
    p, o = st.pim, v.ops
    ch, pc, acc, slot = o["ch"], o["pc"], o["acc"], o["slot"]
    reg = st.acc[ch, pc, acc]
    ew = ew_slots(p)
    g = st.gb[ch[:, None], pc[:, None], slot[:, None] + np.arange(ew)].reshape(v.n, -1)
    g = g[:, :reg[0].size].reshape(reg.shape)
    st.acc[ch, pc, acc] = round_to(st.accd, reg * g if v.kind == "EWMUL" else reg + g)


EXEC = {"WRGB": _wrgb, "WR": _wr, "RD": _rd, "MAC": _mac, "MACab": _mac, "RDMAC": _rdmac,
        "AF": _af, "EWMUL": _ew, "EWADD": _ew}
