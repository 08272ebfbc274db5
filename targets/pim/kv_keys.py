"""KV-cache keys on PIM (scores s_j = k_j · q, one output per token): token j's key (D
values, zero-padded to W = ceil(D / L) bursts) is one *segment* of W consecutive columns
of one bank row; a row holds Rk = columns // W segments. Token j decomposes (least
significant first) as

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

kv_layout.py is the module to import from.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.listing import Affine, Loop, cmd, loop, loop_or_inline


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
    """Memory image of tokens 0..count-1 of K [G, S, D] (rows holding no token omitted),
    built through a cached row_image.ImagePlan."""
    from speccc.targets.pim.row_image import planned_image
    K = np.asarray(K)
    return planned_image(("keys", kl, K.shape, count),
                         lambda k: _key_rows(kl, k, count), K)


def _key_rows(kl: KeyLayout, K: np.ndarray, count: int) -> dict:
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
    e = np.arange(heads * positions)[:, None]
    c, p, s, u, a, v = kl.decompose(np.arange(length)[None, :] + kl.offset(e // positions // group))
    key = dst + (((e * n + c) * kl.pcs + p) * V + v) * (kl.sets * kl.segs) + s * kl.segs + a
    from speccc.targets.pim.host_out import stack_outputs
    uniq, inv = np.unique(key, return_inverse=True)
    try:
        got = stack_outputs(host_out, uniq).astype(np.float32, copy=False)
    except KeyError as err:
        raise SpecccError(f"score result {err.args[0]} was never read out (RDMAC missing)") \
            from None
    sums = got.sum(axis=-1, dtype=np.float32)          # (unique results, PUs)
    return sums[inv.reshape(key.shape), u].reshape(heads, positions, length)
