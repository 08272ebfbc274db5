"""Where commands land in the timing engine's flat `ready` vector: the layout (one block
per (level, following kind) a rule needs, with group nodes so all-bank commands cost
O(1)), and each concrete command shape's precomputed effect (`_Sig`: entries to check,
entries to raise, tFAW-style windows, completion latency, counters), memoized per shape.
A base of Scheduler (scheduler.py), which sets the attributes these methods read:
pim, standard, rules, done_lat, layout, _sigs.
"""
from __future__ import annotations

from speccc.targets.pim.channel import HazardSlot, ReadyLayout
from speccc.targets.pim.isa import ew_slots, token_groups, token_operands, touched_banks
from speccc.targets.pim.steady import HAZARD_LEVELS
from speccc.targets.pim.timing import LEVELS, level_sizes, touched


class _Sig:
    """Precomputed effect of one concrete command shape (kind + nodes)."""
    __slots__ = ("check", "updates", "wins", "done", "cnt", "banks", "pc")


class CommandSignatures:
    """The ready-vector layout and command-shape effects of a Scheduler."""

    # ------------------------------------------------------------- layout ----
    def _layout(self) -> ReadyLayout:
        """Flat `ready` vector: one block per (level, following kind) that some rule needs;
        hazard levels last so a snapshot can relabel them.

        Bank and bank-group levels also get group nodes, so an all-bank command costs
        O(1) instead of O(banks): groups are each `sel` set and the whole of a
        pseudo-channel. A command touching exactly a group writes `up[g]`; one touching
        single units writes the unit and `down[g]` of each group holding it. A reader of a
        unit checks the unit and `up` of its groups; a reader of a group checks `up` of
        every group meeting it and its own `down`. That is exactly "prev and next share a
        bank". A rule whose next-set is every kind uses one entry, kind `*`."""
        sizes = level_sizes(self.pim)
        p = self.pim
        self.groups: dict = {}            # level -> {frozenset(units): group id}
        self.member: dict = {}            # level -> unit -> [group ids]
        self.meets: dict = {}             # level -> group id -> [group ids sharing a unit]
        nodes = {}
        for lvl in LEVELS:
            gs = []
            if lvl == "bank":
                S = p.pu.banks_per_pu
                for pc in range(p.pseudo_channels):
                    banks = range(pc * p.banks_per_pc, (pc + 1) * p.banks_per_pc)
                    gs.append(frozenset(banks))
                    if S > 1:
                        gs += [frozenset(b for b in banks if b % S == s) for s in range(S)]
            elif lvl == "bankgroup":
                gs = [frozenset(range(pc * p.bank_groups, (pc + 1) * p.bank_groups))
                      for pc in range(p.pseudo_channels)]
            self.groups[lvl] = {g: i for i, g in enumerate(gs)}
            self.member[lvl] = {u: [i for i, g in enumerate(gs) if u in g] for u in range(sizes[lvl])}
            self.meets[lvl] = {i: [k for k, h in enumerate(gs) if g & h] for i, g in enumerate(gs)}
            nodes[lvl] = sizes[lvl] + 2 * len(gs)
        base: dict = {}
        hazards: list = []              # what each hazard entry gates
        fixed_kind: list = []           # kind of every non-hazard entry
        off = fixed = 0
        for hazard in (False, True):
            if hazard:
                fixed = off
            for lvl in LEVELS:
                if (lvl in HAZARD_LEVELS) != hazard:
                    continue
                kinds = sorted({k for cr in self.rules if cr.rule.level == lvl
                                for k in self._next_kinds(cr.rule)})
                per_pc = sizes[lvl] // p.pseudo_channels
                for k in kinds:
                    base[(lvl, k)] = off
                    if hazard:
                        hazards += [HazardSlot(lvl, k, n // per_pc, n % per_pc) for n in range(sizes[lvl])]
                    else:
                        fixed_kind += [k] * nodes[lvl]
                    off += nodes[lvl]
        return ReadyLayout(off, fixed, tuple(fixed_kind), tuple(hazards), base,
                           {lvl: sizes[lvl] // p.pseudo_channels for lvl in LEVELS})

    def _next_kinds(self, rule) -> tuple:
        return ("*",) if set(rule.next) == set(self.standard.commands) else rule.next

    def _reads(self, lvl: str, units: tuple) -> list:
        g = self.groups[lvl].get(frozenset(units)) if len(units) > 1 else None
        n = len(self.member[lvl])
        G = len(self.groups[lvl])
        if g is not None:
            return [n + h for h in self.meets[lvl][g]] + [n + G + g]
        return [x for u in units for x in [u] + [n + h for h in self.member[lvl][u]]]

    def _writes(self, lvl: str, units: tuple) -> list:
        g = self.groups[lvl].get(frozenset(units)) if len(units) > 1 else None
        n = len(self.member[lvl])
        G = len(self.groups[lvl])
        if g is not None:
            return [n + g]
        return [x for u in units for x in [u] + [n + G + h for h in self.member[lvl][u]]]

    def _sig(self, kind: str, spec, pc: int, bank, sel: int, slot: int, acc: int,
             ntok: int = 1) -> _Sig:
        key = (spec.name, pc, bank, sel, slot, acc, ntok)
        sig = self._sigs.get(key)
        if sig is not None:
            return sig
        pim = self.pim
        banks = touched_banks(pim, spec, pc, bank, sel)
        slots = ()
        if kind in ("WRGB", "MAC", "MACab"):
            slots = (slot,)
        elif kind in ("EWMUL", "EWADD"):
            slots = tuple(range(slot, slot + ew_slots(pim)))
        accs = (acc,) if kind in ("MAC", "MACab", "RDMAC", "AF", "EWMUL", "EWADD") else ()
        if spec.tokens:       # MACN.ab: token i has its own buffered vector and acc set
            slots, accs = token_operands(pim, "slot", slot, ntok), token_operands(pim, "acc", acc, ntok)
        nodes = touched(pim, kind, pc, banks, slots, accs)
        sig = _Sig()
        base = self.layout.base
        sig.check = tuple(sorted({base[(lvl, k)] + n for lvl in LEVELS for k in (kind, "*")
                                  if (lvl, k) in base for n in self._reads(lvl, nodes[lvl])}))
        upd: dict[int, int] = {}
        wins = []
        for cr in self.rules:
            r = cr.rule
            if kind not in r.prev:
                continue
            if r.window > 1:
                for n in nodes[r.level]:
                    idxs = [base[(r.level, f)] + x for f in r.next
                            for x in self._reads(r.level, (n,))]
                    wins.append(((cr.index, n), r.window, cr.latency, tuple(idxs)))
                continue
            lat = cr.latency * token_groups(pim, ntok) if r.tokens else cr.latency
            for n in self._writes(r.level, nodes[r.level]):
                for f in self._next_kinds(r):
                    i = base[(r.level, f)] + n
                    upd[i] = max(upd.get(i, 0), lat)
        sig.updates = tuple(upd.items())
        sig.wins = tuple(wins)
        sig.done = self.done_lat[kind]
        cnt = [1, 0, 0, 0, 0, 0, 0]
        if kind in ("ACT", "ACTab"):
            cnt[1] = len(banks)
        elif kind in ("MAC", "MACab"):
            cnt[2], cnt[4] = len(banks), len(banks) * pim.pu.lanes * ntok
        elif kind in ("RD", "WR", "WRGB"):
            cnt[3] = 1
        elif kind == "RDMAC":
            cnt[3] = pim.rdmac_bursts
        elif kind in ("AF", "EWMUL", "EWADD"):
            cnt[5] = pim.pus_per_pc * pim.acc_lanes
        elif kind == "REF":
            cnt[6] = 1
        sig.cnt = tuple((i, d) for i, d in enumerate(cnt) if d)
        sig.banks, sig.pc = banks, pc
        self._sigs[key] = sig
        return sig
