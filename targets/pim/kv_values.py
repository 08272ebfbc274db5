"""KV-cache values on PIM (context o = Vᵀ p over tokens): kv head g's Vᵀ (D x max_context)
is a GEMV matrix laid out by layout.plan_matrix in "passes" order (M = D outputs, K =
tokens) on the n_v = ceil(D / outputs-per-channel-pass) channels it needs, so token j is
input index k (tile j // T, slot, lane) and a growing context adds tiles (rows base + t).
Kv heads are spread over NG = (channels / n_v) channel groups (NG divides G): head g =
gq*NG + gr lives on channels c0 + gr*n_v ... and rows base + gq*rows_head, so NG heads'
contexts run in parallel. Appending token j writes, for every output d, the burst that
holds j (the host keeps each column's partial last burst: the L-1 values before j, the
effect of a masked write).

One guard row per value head (as layout.py) is reserved.
kv_layout.py is the module to import from.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from speccc.targets.pim.layout import (Placement, gemv_inputs, gemv_outputs, layout_matrix,
                                      plan_matrix)
from speccc.targets.pim.kv_keys import tokens_per_visit
from speccc.targets.pim.listing import Affine, cmd, loop_or_inline, shift_field


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
        needs. Pass q's output m' = c*per + rest is full's output (c*Q + q)*per + rest.
        Cached per (layout, length): every run of a kernel asks again."""
        return list(_placements(self, length))


@functools.lru_cache(maxsize=256)
def _placements(vl: ValueLayout, length: int) -> tuple[Placement, ...]:
    full, Q = vl.full, vl.full.passes
    tiles = math.ceil(length / full.tile_elems)
    if Q == 1:
        return (dataclasses.replace(full, K=length, tiles=tiles),)
    one = dataclasses.replace(full, passes=1)
    return tuple(dataclasses.replace(one, K=length, tiles=tiles, M=one.Mp,
                                     base=full.base + q * full.tiles) for q in range(Q))


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
    """Memory image of tokens 0..count-1 of V [G, S, D] (as Vᵀ per kv head), built
    through a cached row_image.ImagePlan (the preset's geometry is in the key)."""
    from speccc.targets.pim.row_image import planned_image
    V = np.asarray(V)
    return planned_image(("values", hw.name, hw.pim, vl, V.shape, count),
                         lambda v: _value_rows(hw, vl, v, count), V)


def _value_rows(hw, vl: ValueLayout, V: np.ndarray, count: int) -> dict:
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
    return gemv_inputs(pl, probs.reshape(-1, probs.shape[-1]))


def context_outputs(vl: ValueLayout, host_out: dict, length: int, *, heads: int,
                    positions: int, dst: int = 0) -> np.ndarray:
    pls = vl.placements(length)
    Q, outs = len(pls), pls[0].outputs
    full = vl.full
    per = full.pcs * full.accs * full.pus
    res = np.zeros((heads * positions, full.Mp), np.float32)
    rows = np.arange(heads * positions)
    for q, pl in enumerate(pls):        # pass q of every query row at once
        y = gemv_outputs(pl, host_out, dst + (rows * Q + q) * outs)
        m1 = np.arange(y.shape[1])
        res[:, (m1 // per * Q + q) * per + m1 % per] = y
    return res[:, :vl.head_dim].reshape(heads, positions, -1)
