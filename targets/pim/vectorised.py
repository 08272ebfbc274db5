"""Vectorised functional engine: a whole listing as numpy over all its command instances.

The per-command engine (functional.FunctionalState, engine="command") steps through every
iteration of every loop; it stays as the oracle. This one compiles a listing once into a
`DataflowPlan` (cached per Program object) and then runs it with a few numpy operations
per *accumulation step*, however many loop iterations and channels the listing has:

1. every effectful command is expanded into all its instances (operand values as int
   arrays), each with its position in program order (`instances.expand`);
2. every read of a global-buffer slot or a bank word is resolved to the write that last
   preceded it in program order: a WRGB / WR of this listing (whose value is the rounded
   host input burst) or the state at the listing's start (`instances.last_writer`);
3. accumulator registers (one per PU) are renamed: each MAC / AF / EWMUL / EWADD instance
   makes a new value from the previous value of the same register, RDMAC reads one and
   starts the register again from zero. The value's *level* is its distance from the
   register's last clear (or the listing's start); values of one level are independent,
   so they are computed together, level by level, each with exactly the per-command
   engine's arithmetic (the same fp32 products and lane sums, the same rounding after
   every step). MAC lane products and sums do not depend on accumulators and are
   computed once for all instances;
4. host outputs (RD, RDMAC: the last write of each `dst` wins), the accumulators, the
   global buffer and the bank rows are left as the per-command engine leaves them.

With numba installed (the `[fast]` extra) step 3 runs as one compiled loop over the
values of a plan (level_jit.py, AF steps excepted), the MAC words read from the pool
in place; without it, or for a small plan, as numpy per level.

Results are bit-identical to the per-command engine, multi-token MACN.ab included
(tests/pim/test_pim_vectorised.py runs both on every preset and precision;
tests/pim/test_pim_level_jit.py the compiled loop). A missing
host input burst is reported for the first command in program order that reads it.
"""
from __future__ import annotations

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.host_out import HostOut
from speccc.targets.pim.instances import Instances, cat, expand, last_per_key, last_writer
from speccc.targets.pim.isa import OPS, ew_slots, token_operands
from speccc.targets.pim.word_reads import WordReads, round_into

# accumulator step kinds (MAC, AF, EWMUL, EWADD make values; RDMAC reads and clears)
MAC, AF, EWMUL, EWADD, RDMAC = range(5)
STEP_KINDS = {"MAC": MAC, "MACab": MAC, "AF": AF, "EWMUL": EWMUL, "EWADD": EWADD,
              "RDMAC": RDMAC}


class DataflowPlan:
    """One listing compiled for a FunctionalState's preset and precision (see module doc)."""

    def __init__(self, st, program):
        p = st.pim
        self.pim, self.name = p, program.name
        inst: list[Instances] = []
        expand(program.body, {}, np.zeros(1, np.int64), inst)
        by_kind: dict[str, list[Instances]] = {}
        for v in inst:
            by_kind.setdefault(v.kind, []).append(v)
        self.lanes, self.acc_lanes = p.pu.lanes, p.acc_lanes
        self.tree = p.pu.reduce == "tree"
        self._host_reads(by_kind)
        self._words(st, by_kind)
        self._buffer(by_kind)
        self._accumulators(by_kind)
        self._outputs(by_kind)
        self._vals = None            # accumulator values, the buffer kept between runs
        self.compiled = None         # level_jit.CompiledSteps; False: numpy; None: undecided
        self.runs = 0

    # ------------------------------------------------------------- compile ----
    def _pc(self, o, n):
        p = self.pim
        if "bank" in o:
            return o["bank"] // p.banks_per_pc
        return o.get("pc", np.zeros(n, np.int64))

    def _host_reads(self, by_kind) -> None:
        """WRGB / WR read host input bursts: the largest `src` decides if the stream is
        long enough; on a miss, the first instance in program order is reported."""
        srcs = [(v, v.ops["src"]) for k in ("WRGB", "WR") for v in by_kind.get(k, [])]
        self.readers = srcs
        self.max_src = max((int(s.max()) for _, s in srcs if len(s)), default=-1)

    def _missing(self, have: int) -> SpecccError:
        first = None
        for v, src in self.readers:
            bad = np.flatnonzero(src >= have)
            if len(bad) and (first is None or v.order[bad[0]] < first[0]):
                first = (int(v.order[bad[0]]), v, int(src[bad[0]]))
        _, v, src = first
        c = v.cmd
        return SpecccError(f"{c.op} reads host input burst {src}, but only {have} were "
                           f"provided", location=f"{self.name}:{c.line}:{c.col}")

    def _words(self, st, by_kind) -> None:
        """Bank words: MAC (every bank it touches) and RD reads, WR writes."""
        p = self.pim
        w_key, w_order, w_src, w_row, w_col = [], [], [], [], []
        for v in by_kind.get("WR", []):
            o = v.ops
            w_row.append(np.stack([o["ch"], o["bank"], o["row"]], axis=1))
            w_col.append(o["col"])
            w_src.append(o["src"])
            w_order.append(v.order)
        r_ch, r_bank, r_row, r_col, r_order = [], [], [], [], []
        self.mac_groups = []          # (Instances, banks (n, nb), word offset)
        at = 0
        for kind in ("MAC", "MACab"):
            for v in by_kind.get(kind, []):
                o, spec = v.ops, OPS[v.cmd.op]
                if spec.all_bank:     # the `sel` set of the pseudo-channel: one bank per PU
                    S = p.pu.banks_per_pu
                    sel = o.get("sel", np.zeros(v.n, np.int64))
                    banks = ((self._pc(o, v.n) * p.banks_per_pc + sel)[:, None]
                             + S * np.arange(p.banks_per_pc // S))
                else:
                    banks = o["bank"][:, None]
                nb = banks.shape[1]
                self.mac_groups.append((v, banks, at))
                at += v.n * nb
                r_ch.append(np.repeat(o["ch"], nb))
                r_bank.append(banks.reshape(-1))
                r_row.append(np.repeat(o["row"], nb))
                r_col.append(np.repeat(o["col"], nb))
                r_order.append(np.repeat(v.order, nb))
        self.rd = by_kind.get("RD", [])
        self.rd_at = at                # RD word reads follow the MACs'
        for v in self.rd:
            o = v.ops
            for lst, x in ((r_ch, o["ch"]), (r_bank, o["bank"]), (r_row, o["row"]),
                           (r_col, o["col"]), (r_order, v.order)):
                lst.append(x)
        r_ch, r_bank, r_row, r_col, r_order = (cat(x) for x in (r_ch, r_bank, r_row, r_col,
                                                                 r_order))
        wr_rows = cat(w_row, width=3)
        w_col, w_src, w_order = cat(w_col), cat(w_src), cat(w_order)

        def word_key(ch, bank, row, col):
            return ((ch * p.banks_per_channel + bank) * p.rows + row) * p.columns + col

        w_key = word_key(wr_rows[:, 0], wr_rows[:, 1], wr_rows[:, 2], w_col)
        writer = last_writer(w_key, w_order, word_key(r_ch, r_bank, r_row, r_col), r_order)
        init = writer < 0
        rows = np.stack([r_ch, r_bank, r_row], axis=1)[init]
        uniq, inv = (np.unique(rows, axis=0, return_inverse=True) if len(rows)
                     else (np.zeros((0, 3), np.int64), np.zeros(0, np.int64)))
        self.word_rows = [tuple(r) for r in uniq.tolist()]     # rows read as the listing found them
        self._pool_of_rows = (-1, None)
        # per word read: its row among word_rows (len(word_rows): none, a WR of this
        # listing supplies it), column, and the WR's host burst (-1: none)
        self.read_row = np.full(len(r_ch), len(uniq), np.int64)
        self.read_row[init] = inv.reshape(-1)
        self.read_col = r_col
        self.read_src = np.full(len(r_ch), -1, np.int64)
        self.read_src[~init] = w_src[writer[~init]]
        last = last_per_key(w_key, w_order)                   # WR results left in the banks
        self.wr_final = [tuple(r) for r in wr_rows[last].tolist()]
        self.wr_final_col, self.wr_final_src = w_col[last], w_src[last]
        self._wr_slots = (-1, None)          # (layout version, pool rows of wr_final)

    def _buffer(self, by_kind) -> None:
        """Global-buffer slots: MAC (one per token) and EWMUL/EWADD reads, WRGB writes."""
        p = self.pim

        def gb_key(ch, pc, slot):
            return (ch * p.pseudo_channels + pc) * p.gb_slots_total + slot

        wr = by_kind.get("WRGB", [])
        w_key = cat([gb_key(v.ops["ch"], self._pc(v.ops, v.n), v.ops["slot"]) for v in wr])
        w_order = cat([v.order for v in wr])
        w_src = cat([v.ops["src"] for v in wr])
        r_key, r_order = [], []
        self.mac_gb_at = []           # per MAC group: offset of its (n, tokens) reads
        at = 0
        for v, _, _ in self.mac_groups:
            o = v.ops
            ntok = int(o["n"][0]) if "n" in o else 1
            slots = np.stack(token_operands(p, "slot", o["slot"], ntok), axis=1)  # (n, ntok)
            r_key.append(gb_key(o["ch"][:, None], self._pc(o, v.n)[:, None], slots).reshape(-1))
            r_order.append(np.repeat(v.order, ntok))
            self.mac_gb_at.append((at, ntok))
            at += v.n * ntok
        ew = ew_slots(p)
        self.ew = [v for k in ("EWMUL", "EWADD") for v in by_kind.get(k, [])]
        self.ew_gb_at = at
        for v in self.ew:
            o = v.ops
            slots = o["slot"][:, None] + np.arange(ew)
            r_key.append(gb_key(o["ch"][:, None], self._pc(o, v.n)[:, None], slots).reshape(-1))
            r_order.append(np.repeat(v.order, ew))
            at += v.n * ew
        r_key, r_order = cat(r_key), cat(r_order)
        writer = last_writer(w_key, w_order, r_key, r_order)
        init = writer < 0
        uniq, inv = np.unique(r_key[init], return_inverse=True)
        self.gb_init_keys = uniq
        # index into [gb at the start (gb_init_keys) ; rounded host input]
        idx = np.empty(len(r_key), np.int64)
        idx[init] = inv.reshape(-1)
        idx[~init] = len(uniq) + w_src[writer[~init]]
        self.gb_read = idx
        self.ew_gb = idx[self.ew_gb_at:]
        last = last_per_key(w_key, w_order)
        self.gb_final_key, self.gb_final_src = w_key[last], w_src[last]

    def _accumulators(self, by_kind) -> None:
        """Rename accumulator registers into values computed level by level."""
        p = self.pim
        pus = p.pus_per_pc

        def acc_key(ch, pc, acc):
            return ((ch * p.pseudo_channels + pc) * p.acc_total + acc) * pus

        keys, orders, kinds, pays, fns = [], [], [], [], []
        pair_word, pair_gb = [], []   # per MAC (instance, token, bank): its word and gb reads
        for (v, banks, w_at), (g_at, ntok) in zip(self.mac_groups, self.mac_gb_at):
            o = v.ops
            accs = np.stack(token_operands(p, "acc", o["acc"], ntok), axis=1)     # (n, ntok)
            pu = (banks % p.banks_per_pc) // p.pu.banks_per_pu                     # (n, nb)
            k = (acc_key(o["ch"], self._pc(o, v.n), 0)[:, None, None] + accs[:, :, None] * pus
                 + pu[:, None, :])
            keys.append(k.reshape(-1))
            i, j, b = np.indices(k.shape).reshape(3, -1)
            pair_word.append(w_at + i * k.shape[2] + b)
            pair_gb.append(g_at + i * ntok + j)
            orders.append(np.repeat(v.order, k.shape[1] * k.shape[2]))
            kinds.append(np.full(k.size, MAC, np.int64))
            fns.append(np.zeros(k.size, np.int64))
        n_mac = sum(len(k) for k in keys)
        pays.append(np.arange(n_mac, dtype=np.int64))        # row of the MAC add term
        self.af_fns = sorted({v.ops["fn"] for v in by_kind.get("AF", [])})
        whole = [(v, STEP_KINDS[v.kind]) for v in by_kind.get("AF", [])] + \
            [(v, STEP_KINDS[v.kind]) for v in self.ew] + \
            [(v, RDMAC) for v in by_kind.get("RDMAC", [])]
        ew_at = 0
        for v, kind in whole:      # whole-register steps: one value per PU
            o = v.ops
            k = (acc_key(o["ch"], self._pc(o, v.n), o["acc"])[:, None] + np.arange(pus)).reshape(-1)
            keys.append(k)
            orders.append(np.repeat(v.order, pus))
            kinds.append(np.full(len(k), kind, np.int64))
            fn = self.af_fns.index(o["fn"]) if kind == AF else 0
            fns.append(np.full(len(k), fn, np.int64))
            if kind in (EWMUL, EWADD):      # row of the EW operand (event, PU)
                pays.append(ew_at + np.arange(len(k), dtype=np.int64))
                ew_at += len(k)
            else:
                pays.append(np.zeros(len(k), np.int64))
        self.rdmac = by_kind.get("RDMAC", [])
        key, order, kind, pay, fn = (cat(x) for x in (keys, orders, kinds, pays, fns))
        # chains: per register in program order
        srt = np.lexsort((order, key))
        sk, skind = key[srt], kind[srt]
        n = len(srt)
        idx = np.arange(n)
        start = np.r_[True, sk[1:] != sk[:-1]] if n else np.zeros(0, bool)
        after_clear = np.r_[False, skind[:-1] == RDMAC] & ~start if n else start
        seg = np.maximum.accumulate(np.where(start | after_clear, idx, 0)) if n else idx
        level = idx - seg + 1
        key_no = np.cumsum(start) - 1
        self.init_keys = sk[start]                 # registers read as the listing found them
        n_init = len(self.init_keys)
        # values: 0 = zero (a cleared register), 1..n_init = initial, then one per step
        makes = skind != RDMAC
        group = skind * 16 + fn[srt]
        step_srt = np.flatnonzero(makes)
        by_level = step_srt[np.lexsort((group[step_srt], level[step_srt]))]
        node = np.full(n, -1, np.int64)
        node[by_level] = 1 + n_init + np.arange(len(by_level))
        prev = np.where(start, 1 + key_no, 0)
        inner = ~start & ~after_clear
        prev[inner] = node[idx[inner] - 1]
        self.n_values = 1 + n_init + len(by_level)
        self.steps = []                            # (lo, hi, kind, fn, prev values)
        lv, gr = level[by_level], group[by_level]
        cuts = np.flatnonzero(np.r_[True, (lv[1:] != lv[:-1]) | (gr[1:] != gr[:-1])]) if len(lv) else []
        bounds = list(cuts) + [len(by_level)]
        for a, b in zip(bounds, bounds[1:]):
            g = int(gr[a])
            self.steps.append((1 + n_init + a, 1 + n_init + b, g // 16, self.af_fns[g % 16]
                               if g // 16 == AF else None, prev[by_level[a:b]]))
        payload = pay[srt][by_level]
        kinds_in_order = skind[by_level]
        # payload rows (MAC add terms, EW operands) in the order the steps consume them
        mac_pay = payload[kinds_in_order == MAC]
        self.mac_words = WordReads(self, cat(pair_word)[mac_pay], reuse=True)
        self.mac_gb = self.gb_read[cat(pair_gb)[mac_pay]] if len(mac_pay) else mac_pay
        self.ew_pay = payload[(kinds_in_order == EWMUL) | (kinds_in_order == EWADD)]
        prev_orig = np.empty(n, np.int64)
        prev_orig[srt] = prev
        rd_at = np.flatnonzero(kind == RDMAC)
        self.rdmac_prev = prev_orig[rd_at]         # (events x PUs) values RDMAC reads
        last = np.r_[start[1:], True] if n else start
        self.final_keys = sk[last]
        self.final_values = np.where(skind[last] == RDMAC, 0, node[last])

    def _outputs(self, by_kind) -> None:
        """Host outputs: the last RD / RDMAC of each dst in program order."""
        dst = cat([v.ops["dst"] for v in self.rd] + [v.ops["dst"] for v in self.rdmac])
        order = cat([v.order for v in self.rd] + [v.order for v in self.rdmac])
        n_rd = sum(v.n for v in self.rd)
        last = last_per_key(dst, order)
        last = last[np.argsort(order[last], kind="stable")]
        from_rd = last < n_rd
        self.out_rd = dst[last[from_rd]].tolist()
        self.rd_words = WordReads(self, self.rd_at + last[from_rd])
        self.out_rdmac = (dst[last[~from_rd]].tolist(), last[~from_rd] - n_rd)
        self.rdmac_dsts = dst[last[~from_rd]]
        self.rdmac_order = np.argsort(self.rdmac_dsts, kind="stable")

    # ----------------------------------------------------------------- run ----
    def run(self, st) -> None:
        from speccc.targets.pim.functional import round_to
        p, lanes, al = self.pim, self.lanes, self.acc_lanes
        if self.max_src >= len(st.host_in):
            raise self._missing(len(st.host_in))
        hin = round_to(st.store, st.host_in) if self.max_src >= 0 else st.host_in
        # global-buffer values as read
        gb_flat = st.gb.reshape(-1, lanes)
        table = np.concatenate([gb_flat[self.gb_init_keys], hin]) if len(self.gb_init_keys) \
            else hin
        vals = self._vals          # reused: a fresh array each run costs page faults
        if vals is None:
            vals = self._vals = np.empty((self.n_values, al), np.float32)
        vals[0] = 0
        acc_flat = st.acc.reshape(-1, al)
        vals[1:1 + len(self.init_keys)] = acc_flat[self.init_keys]
        operand = None
        if self.ew:
            ew = table[self.ew_gb].reshape(-1, ew_slots(p) * lanes)
            operand = ew[:, :p.pus_per_pc * al].reshape(-1, al)[self.ew_pay]
        with np.errstate(over="ignore"):      # as round_to: fp16 overflow is inf, silently
            if self.compiled is None:         # undecided: see CompiledSteps.for_plan
                from speccc.targets.pim.level_jit import CompiledSteps
                self.compiled = CompiledSteps.for_plan(self, self.runs)
            self.runs += 1
            if self.compiled:
                self.compiled.run(st, table, operand, vals)
            else:
                self._run_levels(st, hin, table, operand, vals)
        # host outputs, then the state the listing leaves
        out = st.host_out
        if self.out_rd:
            out.update(zip(self.out_rd, self.rd_words.gather(st, hin)))
        dsts, at = self.out_rdmac
        if dsts:
            read = (self.compiled.read_out(vals, self.rdmac_prev, st.outd) if self.compiled
                    else round_to(st.outd, vals[self.rdmac_prev])).reshape(-1, p.pus_per_pc, al)
            if isinstance(out, HostOut):
                out.add_block(self.rdmac_dsts, read, at, self.rdmac_order)
            else:
                out.update(zip(dsts, read[at]))
        acc_flat[self.final_keys] = vals[self.final_values]
        if len(self.gb_final_key):
            gb_flat[self.gb_final_key] = hin[self.gb_final_src]
        if self.wr_final:
            version, at = self._wr_slots
            if version != st.layout_version:      # rows added since: look them up again
                at = np.array([st.slot(k) for k in self.wr_final], np.int64)
                self._wr_slots = (st.layout_version, at)
            st.pool[at, self.wr_final_col] = hin[self.wr_final_src]
            st.written[at] += 1

    def _run_levels(self, st, hin, table, operand, vals) -> None:
        """numpy: a few array operations per level (the path without numba)."""
        from speccc.targets.pim.functional import AF as AF_FNS
        # MAC add terms (lane products, summed by the adder tree), in the order the steps
        # use them; then the per-register steps
        if len(self.mac_gb):
            prods = self.mac_words.gather(st, hin) * table[self.mac_gb]
            add = prods.sum(axis=1, dtype=np.float32, keepdims=True) if self.tree else prods
        mac_at = ew_at = 0
        accd = st.accd
        for lo, hi, kind, fn, prev in self.steps:
            before = vals[prev]
            n = hi - lo
            if kind == MAC:      # tree: one lane per register (acc_lanes = 1), add (n, 1)
                np.add(before, add[mac_at:mac_at + n], out=before)
                mac_at += n
            elif kind == AF:
                before = AF_FNS[fn](before)
            else:
                g = operand[ew_at:ew_at + n]
                before = before * g if kind == EWMUL else before + g
                ew_at += n
            round_into(accd, before, vals[lo:hi])

    def pool_rows(self, st) -> np.ndarray:
        """Pool row of each of `word_rows` (and a last 0: the zero row), per row layout."""
        version, rows = self._pool_of_rows
        if version != st.layout_version:
            rows = np.array([st.index.get(k, 0) for k in self.word_rows] + [0], np.int64)
            self._pool_of_rows = (st.layout_version, rows)
        return rows


class VectorEngine:
    """Runs programs on a FunctionalState (its arrays and rounding); plans are cached per
    Program object (kept alive by the cache, so its id is never reused)."""

    def __init__(self, st):
        self.st = st
        self.cache: dict = {}

    def run(self, program) -> None:
        hit = self.cache.get(id(program))
        if hit is None:
            hit = self.cache[id(program)] = (program, DataflowPlan(self.st, program))
        hit[1].run(self.st)
