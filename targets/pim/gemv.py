"""GEMV y = W x as a PIM listing over a Placement (layout.py).

Per channel (every channel runs the same stream on its own weights, as a `loop c`):

  prologue   WRGB x tile 0 into every pseudo-channel's global buffer; ACT.ab set 0
  loop q     passes: each PU accumulates R*S outputs            ("passes" order)
    loop t   x tiles
      for each bank set s: one row visit = R segments of Gt all-bank MACs
               (col = a*Gt + g, slot = g, acc = s*R + a)
    RDMAC    every accumulator of the pass to the host (dst blocks), which clears it
  epilogue   PREA
In "tiles" order (layout.py) the t loop is outside and every visit ends with RDMACs of
partial sums, so x crosses the bus once instead of once per pass; with a second buffer
vector per token it alternates buffer halves and spreads each refill over the passes
(`double_buffered`, ISA.md "Buffer loads and MACs").

The schedule is software-pipelined so the in-order command stream keeps the MAC rate:
- with 2+ bank sets (HBM-PIM even/odd banks), the other set is precharged k1 MACs and
  re-activated for the next visit k2 MACs into the current set's stream (k1, k2 from
  tRTP, tRP and tCCD_AB), so activation hides behind computation;
- with one set (AiM, AttAcc-like), each visit ends with PRE.ab and the ACT.ab of the next
  visit, placed before the pass's RDMACs so tMACL overlaps tRP/tRCD;
- the next x tile is written into the global buffer during the tile's last segment, each
  WRGB right after the last MAC that reads that slot (MACs latch their slot at issue).
The last visit prefetches tile 0 again and activates the placement's guard row; both are
wasted work of one tile/row, kept so every loop iteration is identical.

Multi-token row visits (`tokens` = T > 1, PUs with vector_slots/acc_sets >= T): the T input
vectors sit side by side in the global buffer (token i's tile in slots i*gb_slots + g) and
every column is MAC'd against all of them by one `MACN.ab ... n=T` (token i accumulates
into set i: acc + i*acc_regs), so the weights stream once for T tokens; the buffer loads
and RDMACs are per token (host input of token i at src + i*src_step, outputs at
dst + i*dst_step). T = 1 emits exactly the one-token listing. `gemv_tokens` splits R
rows of x into groups of at most `token_slots` tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from speccc.errors import SpecccError
from speccc.targets.pim.layout import Placement, gemv_input, gemv_output, layout_matrix
from speccc.targets.pim.listing import Affine, Command, Loop, Program, cmd, loop


def _split_points(hw, pl: Placement) -> tuple[int, int]:
    """MAC indices after which the idle set's PRE.ab and ACT.ab go (pipelined sets)."""
    t = hw.pim.timing
    k1 = max(0, math.ceil((t.tRTP - t.tCCD_AB - 1) / t.tCCD_AB))
    k2 = k1 + math.ceil(t.tRP / t.tCCD_AB)
    return k1, k2


class Tok:
    """The tokens of one row visit: count, buffer/accumulator strides, host strides."""

    def __init__(self, hw, tokens: int = 1, src_step: int = 0, dst_step: int = 0):
        self.n, self.src_step, self.dst_step = tokens, src_step, dst_step
        self.V, self.A = hw.pim.gb_slots, hw.pim.pu.acc_regs

    def each(self):
        """(token, slot offset, acc offset, src offset, dst offset) per token."""
        return [(i, i * self.V, i * self.A, i * self.src_step, i * self.dst_step)
                for i in range(self.n)]


@dataclass(frozen=True)
class Refill:
    """WRGBs interleaved into a visit: after MAC position j in [lo, hi), burst
    src + (j - lo) into slot slot + (j - lo), for every token (the token's vector and
    host offsets added) or, with `tokens`, for those (slot offset, src offset) pairs."""
    lo: int
    hi: int
    slot: Affine
    src: Affine
    tokens: tuple | None = None


def _last_segment(pl: Placement, prefetch) -> Refill | None:
    """The single-buffer refill: the next tile, slot g right after the last segment's
    MAC at slot g (the last MAC that reads it in this visit)."""
    if prefetch is None:
        return None
    n, gt = pl.per_row * pl.tile_slots, pl.tile_slots
    return Refill(n - gt, n, Affine(0), Affine.of(prefetch))


def _stream(pl: Placement, ch, row, sel: int, acc0: int, hooks: dict, refill: Refill | None,
            tok: Tok, mac_slot: int = 0) -> list:
    """MAC positions j = a*Gt + g of one visit, per pseudo-channel (reading slots
    mac_slot + g), with commands inserted after position j (`hooks`) and the refill's
    WRGBs after positions refill.lo .. refill.hi-1."""
    gt, n = pl.tile_slots, pl.per_row * pl.tile_slots
    out: list = []
    cuts = sorted({0, n} | {j + 1 for j in hooks} | {a * gt for a in range(pl.per_row + 1)}
                  | ({refill.lo, refill.hi} if refill is not None else set()))
    for lo, hi in zip(cuts, cuts[1:]):
        a, g0 = divmod(lo, gt)
        inter = refill is not None and refill.lo <= lo < refill.hi
        body = _piece(pl, ch, row, sel, acc0, a, g0, refill if inter else None, tok, mac_slot)
        if hi - lo == 1:
            out += _bind(body, "g", 0)
        else:
            out.append(loop("g", hi - lo, body))
        if hi - 1 in hooks:
            out += hooks[hi - 1]
    return _merge_segments(out, pl)


def _piece(pl, ch, row, sel, acc0, a, g0, refill: Refill | None, tok: Tok,
           mac_slot: int = 0) -> list:
    """MACs of positions a*Gt + g0 + g (one per pseudo-channel; MACN.ab over the buffered
    tokens when there are several), each followed by the refill's WRGBs (every token's)
    when the piece lies in its range."""
    g = Affine.of("g") + g0
    many = {"n": tok.n} if tok.n > 1 else {}
    body = [cmd("MACN.ab" if many else "MAC.ab", ch=ch, pc=p, sel=sel, row=row,
                col=g + a * pl.tile_slots, slot=g + mac_slot, acc=acc0 + a, **many)
            for p in range(pl.pcs)]
    if refill is not None:
        k = g + (a * pl.tile_slots - refill.lo)          # position within the refill
        pairs = (refill.tokens if refill.tokens is not None
                 else [(sv, sx) for _, sv, _, sx, _ in tok.each()])
        body += [cmd("WRGB", ch=ch, pc=p, slot=refill.slot + k + sv, src=refill.src + sx + k)
                 for sv, sx in pairs for p in range(pl.pcs)]
    return body


def _bind(body: list, var: str, value: int) -> list:
    out = []
    for c in body:
        args = tuple((n, v if isinstance(v, str) else
                      Affine.make(v.const + v.coeff(var) * value,
                                  {x: k for x, k in v.terms if x != var})) for n, v in c.args)
        out.append(Command(c.op, args))
    return out


def _merge_segments(nodes: list, pl: Placement) -> list:
    """Consecutive whole-segment loops that differ only by segment index a -> `loop a`."""
    gt, out, i = pl.tile_slots, [], 0
    while i < len(nodes):
        j = i
        while (j + 1 < len(nodes) and isinstance(nodes[i], Loop) and isinstance(nodes[j + 1], Loop)
               and nodes[i].count == gt and nodes[j + 1].count == gt
               and _shifted(nodes[i], j + 1 - i, gt) == nodes[j + 1]):
            j += 1
        if j > i:
            out.append(loop("a", j - i + 1, [_with_a(nodes[i], gt)]))
        else:
            out.append(nodes[i])
        i = j + 1
    return out


def _shifted(lp: Loop, k: int, gt: int) -> Loop:
    """The same piece k segments later: col + k*Gt, acc + k."""
    step = {"col": k * gt, "acc": k}
    body = [Command(c.op, tuple((n, v + step[n] if n in step else v) for n, v in c.args))
            for c in lp.body]
    return Loop(lp.var, lp.count, tuple(body))


def _with_a(lp: Loop, gt: int) -> Loop:
    a = Affine.of("a")
    body = []
    for c in lp.body:
        args = tuple((n, v + a * gt if n == "col" else v + a if n == "acc" else v)
                     for n, v in c.args)
        body.append(Command(c.op, args))
    return Loop(lp.var, lp.count, tuple(body))


def gemv_program(hw, pl: Placement, *, src: int | Affine = 0, dst: int | Affine = 0,
                 row_offset: int | Affine = 0, sync: bool = True,
                 name: str = "<gemv>") -> Program:
    """Listing computing y = W x for a placement. Host input bursts start at `src` (the
    stream of `gemv_input`), results go to host outputs dst .. dst+pl.outputs-1 (read
    them with `gemv_output`). `row_offset` (may be affine in enclosing loop variables)
    shifts every row, so one body can serve many layers."""
    return Program(tuple(gemv_body(hw, pl, src=src, dst=dst, row_offset=row_offset,
                                   sync=sync)), hw.name, name)


def gemv_body(hw, pl: Placement, *, src=0, dst=0, row_offset=0, sync=True,
              tokens: int = 1, src_step: int = 0, dst_step: int = 0) -> list:
    src, dst, roff = Affine.of(src), Affine.of(dst), Affine.of(row_offset)
    tok = Tok(hw, tokens, src_step, dst_step)
    if tokens > hw.pim.token_slots:
        raise SpecccError(f"{tokens} tokens per row visit, but {hw.name} buffers "
                          f"{hw.pim.token_slots} (vector_slots, acc_sets): use gemv_tokens")
    c0 = pl.channels[0]
    contiguous = list(pl.channels) == list(range(c0, c0 + len(pl.channels)))
    if not contiguous:
        raise SpecccError(f"gemv_program needs a contiguous channel range, got {pl.channels}")
    ch = Affine.of("c") + c0
    S, R, NT, Gt = pl.sets, pl.per_row, pl.tiles, pl.tile_slots
    row = roff + pl.base + Affine.of("q") * NT + Affine.of("t")
    nxt = row + 1
    prefetch = src + (Affine.of("t") + 1) * Gt
    k1, k2 = _split_points(hw, pl)
    pcs = range(pl.pcs)

    def act(sel, r):
        return [cmd("ACT.ab", ch=ch, pc=p, sel=sel, row=r) for p in pcs]

    def pre(sel):
        return [cmd("PRE.ab", ch=ch, pc=p, sel=sel) for p in pcs]

    tile: list = []
    for s in range(S):
        last = s == S - 1
        hooks: dict = {}
        if S == 1:
            hooks[R * Gt - 1] = pre(0) + act(0, nxt)
        else:
            other = (s + 1) % S
            hooks.setdefault(min(k1, R * Gt - 1), []).extend(pre(other))
            hooks.setdefault(min(k2, R * Gt - 1), []).extend(act(other, nxt if last else row))
        tile += _stream(pl, ch, row, s, s * R, hooks,
                        _last_segment(pl, prefetch) if last else None, tok)
    rdmac = [cmd("RDMAC", ch=ch, pc=p, acc=r + sa,
                 dst=dst + sd + ((Affine.of("c") * pl.passes + Affine.of("q")) * pl.pcs + p) * pl.accs + r)
             for _, _, sa, _, sd in tok.each() for p in pcs for r in range(pl.accs)]
    first = roff + pl.base
    if pl.order == "tiles":
        nest = _tile_major(hw, pl, ch, src, dst, roff, pre, act, tok)
    else:
        nest = [loop("q", pl.passes, [loop("t", NT, tile), *rdmac])]
    body = [Loop("g", Gt, tuple(cmd("WRGB", ch=ch, pc=p, slot=Affine.of("g") + sv,
                                    src=src + sx + Affine.of("g"))
                                for _, sv, _, sx, _ in tok.each() for p in pcs)),
            *act(0, first), *nest, *[cmd("PREA", ch=ch, pc=p) for p in pcs]]
    out = [loop("c", len(pl.channels), body,
                comment=f" GEMV {pl.M}x{pl.K} on {pl.hw}: {pl.passes} passes x {NT} tiles")]
    if sync:
        out.append(cmd("SYNC"))
    return out


def _tile_major(hw, pl: Placement, ch, src, dst, roff, pre, act, tok: Tok) -> list:
    """"tiles" order (one bank set): x tile t is sent once and serves every pass; each
    visit's accumulators are read out as a partial sum (dst block d, tile t at
    dst + d*NT + t). Single-buffered, the last pass of a tile refills the buffer with
    tile t+1 (every pass re-reads the tile's slots) and activates the first visit of the
    next tile. Double-buffered (`double_buffered`: a second buffer vector per token),
    tiles alternate between two halves of the buffer and tile t+1's refill is spread
    over the Q visits of tile t, k = ceil(T/Q) tokens' tiles per visit, one burst per
    token after each MAC, so the loads ride in the MAC stream's bus gaps."""
    Q, NT, Gt = pl.passes, pl.tiles, pl.tile_slots
    c = Affine.of("c")
    double = double_buffered(hw, pl, tok.n)
    half = tok.n * tok.V                         # slots of one half (T vectors)

    def visit(t, qv: Affine, nxt: Affine, refill, mac_slot: int = 0) -> list:
        row = roff + pl.base + qv * NT + t
        out = _stream(pl, ch, row, 0, 0, {pl.per_row * Gt - 1: pre(0) + act(0, nxt)}, refill,
                      tok, mac_slot)
        return out + [cmd("RDMAC", ch=ch, pc=p, acc=r + sa,
                          dst=dst + sd + (((c * Q + qv) * pl.pcs + p) * pl.accs + r) * NT + t)
                      for _, _, sa, _, sd in tok.each() for p in range(pl.pcs)
                      for r in range(pl.accs)]

    q = Affine.of("q")

    def nxt_row(t, qv):
        return roff + pl.base + (qv + 1) * NT + t

    def tile(t: Affine, h: int) -> list:
        """Tile t's Q visits, reading buffer half h (always 0 single-buffered)."""
        nxt_tile = src + (t + 1) * Gt
        if not double:
            inner = [loop("q", Q - 1, visit(t, q, nxt_row(t, q), None))] if Q > 1 else []
            return inner + visit(t, Affine(Q - 1), roff + pl.base + t + 1,
                                 _last_segment(pl, nxt_tile))
        k = -(-tok.n // Q)                       # tokens refilled per visit
        other = Affine((1 - h) * half)

        def refill(first: Affine, count: int) -> Refill | None:
            if count == 0:
                return None
            pairs = tuple(((first + i) * tok.V, (first + i) * tok.src_step)
                          for i in range(count))
            return Refill(0, Gt, other, nxt_tile, pairs)

        # visits 0..Q-2 in runs of equal refill size (k tokens, then the rest, then none);
        # the last visit activates the next tile's first row
        counts = [max(0, min(k, tok.n - v * k)) for v in range(Q)]
        out: list = []
        v = 0
        while v < Q - 1:
            end = v
            while end < Q - 1 and counts[end] == counts[v]:
                end += 1
            qv = q + v if end - v > 1 else Affine(v)
            body = visit(t, qv, nxt_row(t, qv), refill(qv * k, counts[v]), h * half)
            out += [loop("q", end - v, body)] if end - v > 1 else body
            v = end
        last = refill(Affine((Q - 1) * k), counts[Q - 1])
        return out + visit(t, Affine(Q - 1), roff + pl.base + t + 1, last, h * half)

    if not double:
        return [loop("t", NT, tile(Affine.of("t"), 0))]
    t2 = Affine.of("t") * 2
    out = [loop("t", NT // 2, tile(t2, 0) + tile(t2 + 1, 1),
                comment=" tiles in pairs: buffer halves 0 and 1")]
    if NT % 2:
        out += tile(Affine(NT - 1), 0)
    return out


def double_buffered(hw, pl: Placement, tokens: int) -> bool:
    """Whether a "tiles"-order GEMV of `tokens` per visit alternates buffer halves: the
    PUs buffer two vectors per token (vector_slots >= 2T), there are passes to spread a
    refill over (Q >= 2) and a next tile to load (NT >= 2), and the single-buffered refill
    would slow its visit's MAC stream (T bursts per MAC take longer than the MAC spacing
    tCCD_AB on the pseudo-channel's data bus, T*tBL, or on the channel's command bus,
    pcs*(1+T)*tCMD). Otherwise that refill already hides, and spreading it would only add
    a read/write bus turnaround (tRTW, tWTR) to every refilling visit. One-vector PUs (the
    published devices) are never double-buffered."""
    t = hw.pim.timing
    bound = max(tokens * t.tBL, pl.pcs * (1 + tokens) * t.tCMD) > t.tCCD_AB
    return (pl.order == "tiles" and 2 * tokens <= hw.pim.pu.vector_slots and pl.passes >= 2
            and pl.tiles >= 2 and bound)


def gemv_tokens(hw, pl: Placement, rows: int, *, stream: int, var: str = "tok",
                src_step: int | None = None, dst_step: int | None = None) -> list:
    """GEMVs of `rows` input vectors (row r's host input at r*src_step, its outputs at
    r*dst_step), in row visits of up to `token_slots` tokens: `loop VAR G { T tokens }`
    and a last, smaller group. One token per visit (token_slots = 1) is a loop of
    one-token GEMVs. src_step/dst_step default to `stream` bursts / the outputs."""
    sx = stream if src_step is None else src_step
    sd = pl.outputs if dst_step is None else dst_step
    T = max(1, min(rows, hw.pim.token_slots))
    full, rest = divmod(rows, T)
    v = Affine.of(var)
    out = []
    if full == 1 and not rest:
        return gemv_body(hw, pl, sync=False, tokens=T, src_step=sx, dst_step=sd)
    if full:
        out.append(loop(var, full, gemv_body(hw, pl, src=v * (T * sx), dst=v * (T * sd),
                                             sync=False, tokens=T, src_step=sx, dst_step=sd),
                        comment=f" {rows} rows of x" + (f", {T} per row visit" if T > 1 else "")))
    if rest:
        out += gemv_body(hw, pl, src=full * T * sx, dst=full * T * sd, sync=False,
                         tokens=rest, src_step=sx, dst_step=sd)
    return out


def run_gemv(hw, W, x, *, mode: str = "device", base: int = 0, channels=None,
             refresh: bool = True, order: str = "auto"):
    """Lay out W, run the generated program functionally and timed; returns (y, result)."""
    from speccc.targets.pim.emulator import PimEmulator
    pl = layout_matrix(hw, W, base=base, channels=channels, order=order)
    emu = PimEmulator(hw, mode=mode, refresh=refresh)
    emu.load_image(pl.image)
    emu.set_input(gemv_input(pl, x))
    res = emu.run(gemv_program(hw, pl))
    return gemv_output(pl, emu.state.host_out), res
