"""KV-cache layout for attention GEMVs on PIM, with room to append tokens up to a maximum
context, and the listings that append to it and compute q·Kᵀ scores and p·V contexts.

NeuPIMs-style: keys one token per bank segment, values transposed. Both are per kv
head; a query head h reads kv head h // (heads / kv_heads) (GQA: stored once, read by
every query head of its group).

Keys (scores s_j = k_j · q, one output per token): token j's key (D values, zero-padded to
W = ceil(D / L) bursts) is one *segment* of W consecutive columns of one bank row; a row
holds Rk = columns // W segments. Token j decomposes (least significant first) as

  u  PU            (P per pseudo-channel)
  s  bank set      (S = min(banks_per_pu, acc_regs); PU u, set s -> bank u*S + s)
  p  pseudo-channel
  c  channel       (n channels of the op's window: every channel, so every channel works)
  a  segment       (Rk per row)
  v  row visit     (`visits` rows per kv head; row = base + g*visits + v)

so one block of n*PCS*S*P tokens fills one segment column of every bank, and a growing
context adds segments, then rows, never moving a token. Kv head g stores token j at
position j + (g % n)*PCS*S*P (rotated by g channels), so appending the same token to
every head writes to different channels instead of queueing on one bank. A score listing writes q (W
bursts) into the global buffer of every pseudo-channel, opens a row in every bank with
all-bank ACT and streams W all-bank MACs per segment into one accumulator per segment
(acc = s*A + a % A, A = acc_regs // S accumulators per set); a group of A segments is
read out with RDMAC (one value per PU). AiM and AttAcc have one register per PU, so
every segment is read out on its own; HBM-PIM's 8 registers hold a whole row of 4
segments per set. Only the visits and segments the current length needs are streamed.
Compared with laying K out as a GEMV matrix (one output per Gt-column row segment), this
packs 8x (AiM) / 4x (AttAcc) more tokens per row for D = 128.

Values (context o = Vᵀ p over tokens): kv head g's Vᵀ (D x max_context) is a GEMV matrix
laid out by layout.plan_matrix in "passes" order (M = D outputs, K = tokens) on the
n_v = ceil(D / outputs-per-channel-pass) channels it needs, so token j is input index k
(tile j // T, slot, lane) and a growing context adds tiles (rows base + t). Kv heads are
spread over NG = (channels / n_v) channel groups (NG divides G): head g = gq*NG + gr
lives on channels c0 + gr*n_v ... and rows base + gq*rows_head, so NG heads' contexts
run in parallel. Appending token j writes, for every output d, the burst that holds j
(the host keeps each column's partial last burst: the L-1 values before j, the effect
of a masked write).

One guard row per value head (as layout.py) is reserved; keys need none.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.layout import Placement, gemv_input, gemv_output, layout_matrix, plan_matrix
from speccc.targets.pim.listing import Affine, Command, Loop, cmd, loop


# ------------------------------------------------------------------ keys ------
@dataclass(frozen=True)
class KeyLayout:
    hw: str
    head_dim: int        # D
    kv_heads: int        # G
    max_context: int
    channels: tuple[int, ...]
    base: int
    width: int           # W: columns (bursts) per token
    segs: int            # Rk: token segments per row
    sets: int            # S
    accs: int            # A: accumulators per set
    pus: int             # P
    pcs: int             # PCS
    lanes: int           # L
    banks_per_pc: int
    columns: int
    visits: int          # rows per kv head

    @property
    def block(self) -> int:
        """Tokens per segment column (one segment in every used bank of the window)."""
        return len(self.channels) * self.pcs * self.sets * self.pus

    @property
    def rows(self) -> int:
        return self.kv_heads * self.visits

    @property
    def per_channel(self) -> int:
        """Tokens of one block in one channel (PSP = PCS * S * P)."""
        return self.pcs * self.sets * self.pus

    def offset(self, g):
        """Kv head g's tokens are stored at j + offset(g): rotated by g % n channels, so
        the same token of different heads (an append) lands in different channels."""
        return (np.asarray(g) % len(self.channels)) * self.per_channel

    def visit_plan(self, length: int) -> list[int]:
        """Segments streamed in each row visit for a context of `length` tokens (the same
        for every head: enough for the largest rotation)."""
        extra = (min(self.kv_heads, len(self.channels)) - 1) * self.per_channel
        blocks = max(1, math.ceil((length + extra) / self.block))
        full, rem = divmod(blocks, self.segs)
        return [self.segs] * full + ([rem] if rem else [])

    def decompose(self, j):
        """Token index (array) -> (channel index, pc, set, PU, segment, visit)."""
        j = np.asarray(j)
        P, S, PCS, n = self.pus, self.sets, self.pcs, len(self.channels)
        u, r = j % P, j // P
        s, r = r % S, r // S
        p, r = r % PCS, r // PCS
        c, b = r % n, r // n
        return c, p, s, u, b % self.segs, b // self.segs

    def bank(self, p, s, u):
        return p * self.banks_per_pc + u * self.sets + s


def plan_keys(hw, head_dim: int, kv_heads: int, max_context: int, *, base: int = 0,
              channels=None) -> KeyLayout:
    p = hw.pim
    L = p.pu.lanes
    W = math.ceil(head_dim / L)
    if W > p.gb_slots or W > p.columns:
        raise SpecccError(f"attention head_dim {head_dim} needs {W} bursts per key, but "
                          f"{hw.name} has {p.gb_slots} global-buffer slots and {p.columns} "
                          "columns per row")
    if max_context < 1:
        raise SpecccError(f"attention max_context {max_context} must be positive")
    channels = tuple(range(p.channels)) if channels is None else tuple(channels)
    S = min(p.pu.banks_per_pu, p.pu.acc_regs)
    kl = KeyLayout(hw.name, head_dim, kv_heads, max_context, channels, base, W,
                   p.columns // W, S, p.pu.acc_regs // S, p.pus_per_pc, p.pseudo_channels,
                   L, p.banks_per_pc, p.columns, 0)
    visits = len(kl.visit_plan(max_context))
    return dataclasses.replace(kl, visits=visits)


def key_image(kl: KeyLayout, K: np.ndarray, count: int) -> dict:
    """Memory image of tokens 0..count-1 of K [G, S, D] (rows holding no token omitted)."""
    K = np.asarray(K, np.float32)
    L, W = kl.lanes, kl.width
    rows: dict = {}
    if count == 0:
        return rows
    data = np.zeros((K.shape[0], count, W * L), np.float32)
    data[:, :, :kl.head_dim] = K[:, :count]
    data = data.reshape(K.shape[0], count, W, L)
    for g in range(K.shape[0]):
        c, p, s, u, a, v = kl.decompose(np.arange(count) + kl.offset(g))
        for i in range(count):
            key = (kl.channels[c[i]], int(kl.bank(p[i], s[i], u[i])),
                   kl.base + g * kl.visits + int(v[i]))
            row = rows.get(key)
            if row is None:
                row = rows[key] = np.zeros((kl.columns, L), np.float32)
            row[a[i] * W:(a[i] + 1) * W] = data[g, i]
    return rows


def key_append(kl: KeyLayout, first: int, count: int, src: int) -> list:
    """Commands writing tokens first..first+count-1 of every kv head: host bursts
    src + (g*count + i)*W + w. Heads g = kgq*n + kgr: a token's channel is its own plus
    kgr (the rotation), wrapping into the next block, so each token is two affine loops
    over kgr. Consecutive tokens that differ only in their PU form one `loop ku` (bank
    stride S)."""
    if count == 0:
        return []
    W, n, PSP, P, S = kl.width, len(kl.channels), kl.per_channel, kl.pus, kl.sets
    full, rem = divmod(kl.kv_heads, n)

    def heads(gq: Affine, hi: int) -> list:
        body: list = []
        i = 0
        while i < count:
            j = first + i
            blk, rest = divmod(j, PSP)
            cj, bj = blk % n, blk // n
            u, s, p = rest % P, (rest // P) % S, rest // (P * S)
            run = min(count - i, P - u)
            ku = Affine.of("ku") if run > 1 else Affine(0)
            for lo, hi2, dc, db in ((0, min(hi, n - cj), 0, 0), (n - cj, hi, -n, 1)):
                if hi2 <= lo:
                    continue
                gr = Affine.of("kgr") + lo
                g = gq * n + gr
                v, a = divmod(bj + db, kl.segs)
                ch = gr + (kl.channels[0] + cj + dc)
                bank = ku * S + kl.bank(p, s, u)
                row = g * kl.visits + (kl.base + v)
                srcv = g * (count * W) + (ku + i) * W + Affine.of("kw") + src
                inner = [cmd("ACT", ch=ch, bank=bank, row=row),
                         loop("kw", W, [cmd("WR", ch=ch, bank=bank, row=row,
                                            col=Affine.of("kw") + a * W, src=srcv)]),
                         cmd("PRE", ch=ch, bank=bank)]
                body += loop_or_inline("kgr", hi2 - lo, loop_or_inline("ku", run, inner))
            i += run
        return body

    out = loop_or_inline("kgq", full, heads(Affine.of("kgq"), n)) if full else []
    if rem:
        out += heads(Affine(full), rem)
    if out and isinstance(out[0], Loop):
        out[0] = dataclasses.replace(out[0], comment=f" append {count} key(s) per kv head")
    return out


def key_append_stream(kl: KeyLayout, K: np.ndarray, first: int, count: int) -> np.ndarray:
    """Host bursts for key_append: K [G, S, D] tokens first.., each padded to W*L."""
    G = K.shape[0]
    out = np.zeros((G, count, kl.width * kl.lanes), np.float32)
    out[:, :, :kl.head_dim] = K[:, first:first + count]
    return out.reshape(-1)


def score_body(hw, kl: KeyLayout, length: int, *, heads: int, positions: int,
               src: int = 0, dst: int = 0) -> list:
    """Scores of every query head and position against the first `length` keys.

    Per channel (`loop c`) and kv head g (`loop kvh`), the query rows sharing that kv head
    (query head i of its group, position t: row e = h*positions + t, h = g*group + i) go
    through the keys in row visits of up to `token_slots` rows (`tokens_per_visit`): row
    e's q (W host bursts at src + e*W) is written to every pseudo-channel's global
    buffer (token k of a visit in slots k*gb_slots + w) and every key column is MAC'd
    against all of them with one `MACN.ab ... n=T` (token k into accumulator set k), so
    a key row opened once serves the whole group. One-slot PUs keep `loop qh`/`loop qt`
    over one-row visits (the listing of the published devices). Every row sees every
    key: causality and masks are applied to the scores on the host (attention_probs),
    and a masked score's probability is 0 in the context GEMV, so computing them is
    exact. RDMAC destinations: dst + ((((e*n + c)*PCS + p)*V + v)*S + s)*Rk + a (read
    them with `key_scores`)."""
    group = heads // kl.kv_heads
    plan = kl.visit_plan(length)
    V, W, S, A, Rk, PCS = len(plan), kl.width, kl.sets, kl.accs, kl.segs, kl.pcs
    n = len(kl.channels)
    c, g = Affine.of("c"), Affine.of("kvh")
    ch = c + kl.channels[0]
    row0 = g * kl.visits + kl.base
    pcs = range(PCS)
    dst_step = n * PCS * V * S * Rk        # one query row's block of read-outs
    gb_slots, acc_regs = hw.pim.gb_slots, hw.pim.pu.acc_regs

    def rd_dst(e, p, v, s, a):
        return (((e * n + c) * PCS + p) * V + v) * (S * Rk) + s * Rk + a + dst

    def per(e: Affine, tokens: int) -> list:
        """One row visit sequence for query rows e .. e+tokens-1."""
        toks = range(tokens)
        many = {"n": tokens} if tokens > 1 else {}

        def visit(v, nseg: int, nxt) -> list:
            out: list = []
            row = row0 + v
            for s in range(S):
                groups = [(k, min(A, nseg - k * A)) for k in range(math.ceil(nseg / A))]
                for gi, (k, na) in enumerate(groups):
                    a = Affine.of("ka") + k * A if na > 1 else Affine(k * A)
                    macs = [loop("kg", W, [cmd("MACN.ab" if many else "MAC.ab", ch=ch, pc=p,
                                               sel=s, row=row, col=a * W + Affine.of("kg"),
                                               slot="kg", acc=a + (s * A - k * A), **many)
                                           for p in pcs])]
                    reads = [cmd("RDMAC", ch=ch, pc=p, acc=a + (s * A - k * A + i * acc_regs),
                                 dst=rd_dst(e, p, v, s, a) + i * dst_step)
                             for i in toks for p in pcs]
                    out += [loop("ka", na, macs)] if na > 1 else macs
                    if gi == len(groups) - 1:
                        out += [cmd("PRE.ab", ch=ch, pc=p, sel=s) for p in pcs]
                        if nxt is not None:
                            out += [cmd("ACT.ab", ch=ch, pc=p, sel=s, row=nxt) for p in pcs]
                    out += [loop("ka", na, reads)] if na > 1 else reads
            return out

        body: list = [loop("kg", W, [cmd("WRGB", ch=ch, pc=p, slot=Affine.of("kg") + i * gb_slots,
                                         src=(e + i) * W + Affine.of("kg") + src)
                                     for i in toks for p in pcs])]
        body += [cmd("ACT.ab", ch=ch, pc=p, sel=s, row=row0) for s in range(S) for p in pcs]
        if V > 1:
            vv = Affine.of("kv")
            body.append(loop("kv", V - 1, visit(vv, Rk, row0 + vv + 1)))
        return body + visit(Affine(V - 1), plan[-1], None)

    rows = group * positions                 # query rows per kv head
    T = tokens_per_visit(hw, rows)
    if T == 1:
        e = (g * group + Affine.of("qh")) * positions + Affine.of("qt")
        inner = loop_or_inline("qh", group, loop_or_inline("qt", positions, per(e, 1)))
    else:
        full, rest = divmod(rows, T)
        e0 = g * rows
        inner = loop_or_inline("qg", full, per(e0 + Affine.of("qg") * T, T)) if full else []
        inner += per(e0 + full * T, rest) if rest else []
    nest = loop_or_inline("kvh", kl.kv_heads, inner)
    visits = f", {T} per key row visit" if T > 1 else ""
    return [loop("c", n, nest,
                 comment=f" scores: {heads} heads x {positions} positions x {length} keys{visits}")]


def tokens_per_visit(hw, rows: int) -> int:
    """Query rows of one kv head that share a row visit: as many as the PUs buffer."""
    return max(1, min(rows, hw.pim.token_slots))


def score_outputs(kl: KeyLayout) -> int:
    """Upper bound of RDMAC destinations per (head, position) (for dst spacing)."""
    return len(kl.channels) * kl.pcs * kl.visits * kl.sets * kl.segs


def key_scores(kl: KeyLayout, host_out: dict, length: int, *, heads: int, positions: int,
               dst: int = 0) -> np.ndarray:
    """[heads, positions, length] scores from score_body's RDMAC results."""
    plan = kl.visit_plan(length)
    V = len(plan)
    n = len(kl.channels)
    group = heads // kl.kv_heads
    out = np.zeros((heads, positions, length), np.float32)
    for e in range(heads * positions):
        c, p, s, u, a, v = kl.decompose(np.arange(length) + kl.offset(e // positions // group))
        key = dst + (((e * n + c) * kl.pcs + p) * V + v) * (kl.sets * kl.segs) + s * kl.segs + a
        vals = np.empty(length, np.float32)
        cache: dict = {}
        for i in range(length):
            k = int(key[i])
            if k not in cache:
                if k not in host_out:
                    raise SpecccError(f"score result {k} was never read out (RDMAC missing)")
                cache[k] = np.asarray(host_out[k], np.float32).sum(axis=-1, dtype=np.float32)
            vals[i] = cache[k][u[i]]
        out.reshape(heads * positions, length)[e] = vals
    return out


# ---------------------------------------------------------------- values ------
@dataclass(frozen=True)
class ValueLayout:
    hw: str
    head_dim: int
    kv_heads: int
    max_context: int
    channels: tuple[int, ...]   # the op's window; group gr uses c0 + gr*n_v ...
    base: int
    per_head: int                # n_v: channels of one head's Vᵀ
    groups: int                  # NG: heads side by side
    rows_head: int               # rows of one head (tiles of max_context + guard)
    full: Placement              # Vᵀ of max_context tokens at `base` on the first group

    @property
    def rows(self) -> int:
        return math.ceil(self.kv_heads / self.groups) * self.rows_head

    def where(self, g: int) -> tuple[int, tuple[int, ...]]:
        """(base row, channels) of kv head g."""
        gq, gr = divmod(g, self.groups)
        c0 = self.channels[0] + gr * self.per_head
        return self.base + gq * self.rows_head, tuple(range(c0, c0 + self.per_head))

    def placements(self, length: int) -> list[Placement]:
        """One single-pass Placement per pass of `full` (first group's head) for a context
        of `length` tokens: pass q's rows base + q*NT_max + t, only the tiles `length`
        needs. Pass q's output m' = c*per + rest is full's output (c*Q + q)*per + rest."""
        full, Q = self.full, self.full.passes
        tiles = math.ceil(length / full.tile_elems)
        if Q == 1:
            return [dataclasses.replace(full, K=length, tiles=tiles)]
        one = dataclasses.replace(full, passes=1)
        return [dataclasses.replace(one, K=length, tiles=tiles, M=one.Mp,
                                    base=full.base + q * full.tiles) for q in range(Q)]


def plan_values(hw, head_dim: int, kv_heads: int, max_context: int, *, base: int = 0,
                channels=None) -> ValueLayout:
    p = hw.pim
    window = tuple(range(p.channels)) if channels is None else tuple(channels)
    nat = plan_matrix(hw, head_dim, max_context, order="passes")
    n_v = min(len(nat.channels), len(window))
    ng = max(d for d in range(1, kv_heads + 1)
             if kv_heads % d == 0 and d * n_v <= len(window))
    full = plan_matrix(hw, head_dim, max_context, base=0, channels=window[:n_v],
                       order="passes")
    full = dataclasses.replace(full, base=base)
    return ValueLayout(hw.name, head_dim, kv_heads, max_context, window, base, n_v, ng,
                       full.rows_used, full)


def value_image(hw, vl: ValueLayout, V: np.ndarray, count: int) -> dict:
    """Memory image of tokens 0..count-1 of V [G, S, D] (as Vᵀ per kv head)."""
    image: dict = {}
    if count == 0:
        return image
    V = np.asarray(V, np.float32)
    for g in range(V.shape[0]):
        base, chans = vl.where(g)
        Vt = np.zeros((vl.head_dim, vl.max_context), np.float32)
        Vt[:, :count] = V[g, :count].T
        pl = layout_matrix(hw, Vt, base=base, channels=chans, order="passes")
        image.update(pl.image)
    return image


def _bursts(vl: ValueLayout, first: int, count: int) -> list[tuple[int, int]]:
    """(tile, slot) of every burst that tokens first..first+count-1 fall in."""
    L, Gt = vl.full.lanes, vl.full.tile_slots
    seen = []
    for j in range(first, first + count):
        b = (j // (Gt * L), (j % (Gt * L)) // L)
        if b not in seen:
            seen.append(b)
    return seen


def value_append(hw, vl: ValueLayout, first: int, count: int, src: int) -> list:
    """Commands writing the bursts that hold tokens first..first+count-1, for every kv head
    (`loop vgq` x `loop vgr`): per output d one WR of L tokens. Host bursts at src +
    ((g*nb + b)*Mp + d) (value_append_stream)."""
    if count == 0:
        return []
    pl, p = vl.full, hw.pim
    S, R, P, PCS, Gt, Q = pl.sets, pl.per_row, pl.pus, pl.pcs, pl.tile_slots, pl.passes
    bursts = _bursts(vl, first, count)
    nb, Mp = len(bursts), pl.Mp
    gq, gr, c, q = Affine.of("vgq"), Affine.of("vgr"), Affine.of("c"), Affine.of("vq")
    ch = c + gr * vl.per_head + vl.channels[0]
    gidx = gq * vl.groups + gr
    body: list = []
    for bi, (t, slot) in enumerate(bursts):
        row = gq * vl.rows_head + q * pl.tiles + vl.base + t
        per_q: list = []
        for pc in range(PCS):
            for s in range(S):
                d = (((((c * Q + q) * PCS + pc) * S + s) * R + Affine.of("va")) * P
                     + Affine.of("vu"))
                srcv = (gidx * nb + bi) * Mp + d + src
                wr = cmd("WR", ch=ch, bank=Affine.of("vu") * S + (pc * p.banks_per_pc + s),
                         row=row, col=Affine.of("va") * Gt + slot, src=srcv)
                per_q += [cmd("ACT.ab", ch=ch, pc=pc, sel=s, row=row),
                          *loop_or_inline("va", R, loop_or_inline("vu", P, [wr])),
                          cmd("PRE.ab", ch=ch, pc=pc, sel=s)]
        body += loop_or_inline("c", vl.per_head, loop_or_inline("vq", Q, per_q))
    return loop_or_inline("vgq", vl.kv_heads // vl.groups, loop_or_inline("vgr", vl.groups, body),
                          comment=f" append {count} value(s) per kv head: {nb} burst(s) per output")


def value_append_bursts(vl: ValueLayout, first: int, count: int) -> int:
    """Host bursts value_append reads (value_append_stream's length in bursts)."""
    return vl.kv_heads * len(_bursts(vl, first, count)) * vl.full.Mp


def value_append_stream(vl: ValueLayout, V: np.ndarray, first: int, count: int) -> np.ndarray:
    """Host bursts for value_append: per head, burst and padded output d, the L tokens of
    the burst (tokens at or after first+count are zero)."""
    pl = vl.full
    L, Gt = pl.lanes, pl.tile_slots
    bursts = _bursts(vl, first, count)
    G = V.shape[0]
    out = np.zeros((G, len(bursts), pl.Mp, L), np.float32)
    end = first + count
    for bi, (t, slot) in enumerate(bursts):
        j0 = (t * Gt + slot) * L
        j1 = min(j0 + L, end)
        if j1 > j0:
            out[:, bi, :vl.head_dim, :j1 - j0] = np.swapaxes(V[:, j0:j1], 1, 2)
    # padded outputs are ordered like layout's m = (c, q, p, s, a, u): d itself
    return out.reshape(-1)


def context_body(hw, vl: ValueLayout, length: int, *, heads: int, positions: int,
                 src: int = 0, dst: int = 0) -> list:
    """Contexts of every query head and position over the first `length` values: GEMVs
    (gemv.gemv_body) per pass on the kv head's channel group; host stream of query row
    e = h*positions + t at src + e*stream (every pass reads the same p), results of pass
    q at dst + (e*Q + q)*outputs. The query rows sharing a kv head (its group's heads x
    positions) go through Vᵀ in row visits of up to `token_slots` rows (MACN.ab, as the
    scores); one-slot PUs keep `loop qh`/`loop qt` over one-row GEMVs."""
    from speccc.targets.pim.gemv import gemv_body
    pls = vl.placements(length)
    Q, group = len(pls), heads // vl.kv_heads
    stream = (pls[0].Kp + pls[0].tile_elems) // pls[0].lanes
    outs = pls[0].outputs
    gq, gr = Affine.of("vgq"), Affine.of("vgr")
    rows = group * positions                 # query rows per kv head
    T = tokens_per_visit(hw, rows)

    def per(e, tokens: int) -> list:
        body: list = []
        for q, pl in enumerate(pls):
            body += gemv_body(hw, pl, src=e * stream + src, dst=(e * Q + q) * outs + dst,
                              row_offset=gq * vl.rows_head, sync=False, tokens=tokens,
                              src_step=stream, dst_step=Q * outs)
        return shift_field(body, "ch", gr * vl.per_head)

    e0 = (gq * vl.groups + gr) * rows
    if T == 1:
        inner = loop_or_inline("qh", group, loop_or_inline(
            "qt", positions, per(e0 + Affine.of("qh") * positions + Affine.of("qt"), 1)))
    else:
        full, rest = divmod(rows, T)
        inner = loop_or_inline("qg", full, per(e0 + Affine.of("qg") * T, T)) if full else []
        inner += per(e0 + full * T, rest) if rest else []
    visits = f", {T} per row visit" if T > 1 else ""
    return loop_or_inline("vgq", vl.kv_heads // vl.groups, loop_or_inline("vgr", vl.groups, inner),
                          comment=f" contexts: {heads} heads x {positions} positions x {length} values{visits}")


def context_stream(vl: ValueLayout, probs: np.ndarray) -> np.ndarray:
    """Host input for context_body: probs [heads, positions, length] -> gemv inputs."""
    pl = vl.placements(probs.shape[-1])[0]
    return np.concatenate([gemv_input(pl, x) for x in probs.reshape(-1, probs.shape[-1])])


def context_outputs(vl: ValueLayout, host_out: dict, length: int, *, heads: int,
                    positions: int, dst: int = 0) -> np.ndarray:
    pls = vl.placements(length)
    Q, outs = len(pls), pls[0].outputs
    full = vl.full
    per = full.pcs * full.accs * full.pus
    res = np.zeros((heads * positions, full.Mp), np.float32)
    for e in range(heads * positions):
        for q, pl in enumerate(pls):
            y = gemv_output(pl, host_out, dst + (e * Q + q) * outs)
            m1 = np.arange(len(y))
            res[e, (m1 // per * Q + q) * per + m1 % per] = y
    return res[:, :vl.head_dim].reshape(heads, positions, -1)


# ---------------------------------------------------------------- helpers -----
def bind_var(body, var: str, value: int) -> list:
    """`body` with loop variable `var` replaced by `value`."""
    out = []
    for node in body:
        if isinstance(node, Command):
            args = tuple((n, v if isinstance(v, str) else
                          Affine.make(v.const + v.coeff(var) * value,
                                      {x: k for x, k in v.terms if x != var}))
                         for n, v in node.args)
            out.append(dataclasses.replace(node, args=args))
        elif isinstance(node, Loop):
            out.append(dataclasses.replace(node, body=tuple(bind_var(node.body, var, value))))
        else:
            out.append(node)
    return out


def loop_or_inline(var: str, count: int, body, comment: str | None = None) -> list:
    """[loop var count {body}], or body itself with var = 0 when count is 1."""
    if count == 1:
        return bind_var(body, var, 0)
    return [loop(var, count, body, comment=comment)]


def shift_field(body, field: str, delta) -> list:
    """Add `delta` (int or Affine) to operand `field` of every command in `body`."""
    delta = Affine.of(delta)
    out = []
    for node in body:
        if isinstance(node, Command):
            if node.has(field):
                args = tuple((n, v + delta if n == field else v) for n, v in node.args)
                node = dataclasses.replace(node, args=args)
            out.append(node)
        elif isinstance(node, Loop):
            out.append(dataclasses.replace(node, body=tuple(shift_field(node.body, field, delta))))
        else:
            out.append(node)
    return out
