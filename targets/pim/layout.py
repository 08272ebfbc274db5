"""Weight layout for PIM GEMV: which channel/bank/row/column holds each W[m, k].

Geometry (all derived from the preset):
  L  lanes per burst;  C  columns per row;  P  PUs per pseudo-channel
  S  bank sets in use (banks_per_pu, at most acc_regs): PU u owns banks u*S .. u*S+S-1,
     all-bank commands pick one set with `sel`, so one set streams while another
     precharges/activates
  Gt global-buffer slots per x tile: the largest divisor of C that fits the buffer;
     one tile = T = Gt*L elements of x
  R  outputs per row visit (segments of Gt columns), R*S <= acc_regs accumulators
  NT = ceil(K / T) tiles;  Q = ceil(M / outputs-per-pass) passes, where one pass gives
     every PU R*S outputs: NCH * PCS * P * S * R

Output m decomposes (most significant first) as (c, q, p, s, a, u): channel index c,
pass q, pseudo-channel p, bank set s, segment a, PU u. Input k decomposes as (t, g, l):
tile t, slot g, lane l. Then W[m, k] lives in

  channel channels[c], bank p*banks_per_pc + u*S + s, row base + q*NT + t,
  column a*Gt + g, lane l

so one row visit (one ACT.ab of set s) streams R whole segments with all-bank MACs and
no column is wasted when R*Gt == C.

Loop order (`order`, chosen by `plan_matrix` to move the fewest bytes over the external
bus unless given): "passes" keeps each output in its accumulator across all tiles and
re-sends x once per pass (best with many registers: HBM-PIM); "tiles" sends x once and
reads a partial sum per (pass, tile), which the host adds in fp32 (best with one
register per PU: AiM, AttAcc-like). "tiles" needs a single bank set. W is zero-padded to Mp x Kp (Mp = NCH*Q*PCS*S*R*P,
Kp = NT*T); padding rows/columns cost time but never change y. One extra `guard` row
(base + Q*NT) is reserved: the pipelined schedule activates it after the last visit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from speccc.errors import CapacityError, SpecccError


@dataclass(frozen=True)
class Placement:
    hw: str
    M: int
    K: int
    channels: tuple[int, ...]
    base: int
    sets: int          # S
    per_row: int       # R
    tile_slots: int    # Gt
    tiles: int         # NT
    passes: int        # Q
    pus: int           # P
    pcs: int           # PCS
    lanes: int         # L
    order: str = "passes"
    image: dict | None = field(default=None, compare=False, repr=False)

    @property
    def tile_elems(self) -> int:
        return self.tile_slots * self.lanes

    @property
    def accs(self) -> int:
        """Accumulator registers used per PU per pass (acc = s*R + a)."""
        return self.sets * self.per_row

    @property
    def Mp(self) -> int:
        return len(self.channels) * self.passes * self.pcs * self.accs * self.pus

    @property
    def Kp(self) -> int:
        return self.tiles * self.tile_elems

    @property
    def rows_used(self) -> int:
        return self.passes * self.tiles + 1

    @property
    def blocks(self) -> int:
        """Output blocks of P outputs (one accumulator register of every PU)."""
        return self.Mp // self.pus

    @property
    def outputs(self) -> int:
        """RDMAC destinations (each holds P PUs x acc_lanes values): one per block, or one
        per block and tile in "tiles" order (block d, tile t at d*NT + t)."""
        return self.blocks * (self.tiles if self.order == "tiles" else 1)

    def external_bytes(self, hw) -> int:
        """Bytes the GEMV moves over the pseudo-channel buses (x in, results out)."""
        p = hw.pim
        x = self.tiles * self.tile_slots * p.burst_bytes * len(self.channels) * self.pcs
        out = self.outputs * p.rdmac_bursts * p.burst_bytes
        return x * (self.passes if self.order == "passes" else 1) + out


def geometry(hw) -> tuple[int, int, int]:
    """(S, R, Gt) for a preset."""
    p = hw.pim
    gt = max(d for d in range(1, p.columns + 1) if p.columns % d == 0 and d <= p.gb_slots)
    s = min(p.pu.banks_per_pu, p.pu.acc_regs)
    r = max(1, min(p.pu.acc_regs // s, p.columns // gt))
    return s, r, gt


def plan_matrix(hw, M: int, K: int, *, base: int = 0,
                channels: tuple[int, ...] | list[int] | None = None,
                order: str = "auto") -> Placement:
    """Placement of an M x K matrix without data (shapes-only models, timing)."""
    p = hw.pim
    if M < 1 or K < 1:
        raise SpecccError(f"GEMV shape {M}x{K}: both dimensions must be positive")
    s, r, gt = geometry(hw)
    per_pass_per_ch = p.pseudo_channels * s * r * p.pus_per_pc
    if channels is None:
        n = min(p.channels, max(1, math.ceil(M / per_pass_per_ch)))
        channels = tuple(range(n))
    channels = tuple(channels)
    if not channels or min(channels) < 0 or max(channels) >= p.channels \
            or len(set(channels)) != len(channels):
        raise SpecccError(f"channels {channels}: need distinct channels in 0..{p.channels - 1}")
    q = math.ceil(M / (len(channels) * per_pass_per_ch))
    nt = math.ceil(K / (gt * p.pu.lanes))
    if order not in ("auto", "passes", "tiles"):
        raise SpecccError(f"GEMV order {order!r}: use auto, passes or tiles")
    if order == "tiles" and s > 1:
        raise SpecccError(f"GEMV order 'tiles' needs one bank set; {hw.name} streams {s}")
    pl = Placement(hw.name, M, K, channels, base, s, r, gt, nt, q, p.pus_per_pc,
                   p.pseudo_channels, p.pu.lanes, "passes" if order == "auto" else order)
    if order == "auto" and s == 1:
        tiles = Placement(**{**pl.__dict__, "order": "tiles"})
        if tiles.external_bytes(hw) < pl.external_bytes(hw):
            pl = tiles
    if base < 0 or base + pl.rows_used > p.rows:
        raise CapacityError(f"GEMV {M}x{K} needs rows {base}..{base + pl.rows_used - 1} in every "
                          f"bank, but preset {hw.name} has {p.rows} rows per bank")
    return pl


def layout_matrix(hw, W, *, base: int = 0,
                  channels: tuple[int, ...] | list[int] | None = None,
                  order: str = "auto") -> Placement:
    """Place W (M x K) into bank rows; the Placement carries the memory image
    {(channel, bank, row): array (columns, lanes)} for PimEmulator.load_image."""
    W = np.asarray(W, dtype=np.float32)
    if W.ndim != 2:
        raise SpecccError(f"layout_matrix: W must be 2-D, got shape {W.shape}")
    pl = plan_matrix(hw, W.shape[0], W.shape[1], base=base, channels=channels, order=order)
    p = hw.pim
    nch, S, R, Gt, L, P = len(pl.channels), pl.sets, pl.per_row, pl.tile_slots, pl.lanes, pl.pus
    Wp = np.zeros((pl.Mp, pl.Kp), np.float32)
    Wp[:pl.M, :pl.K] = W
    # m -> (c, q, p, s, a, u); k -> (t, g, l)
    blk = Wp.reshape(nch, pl.passes, pl.pcs, S, R, P, pl.tiles, Gt, L)
    # -> (c, p, u, s, q, t, a, g, l): one (a, g, l) block per bank row
    blk = blk.transpose(0, 2, 5, 3, 1, 6, 4, 7, 8)
    image = {}
    zero_tail = np.zeros((p.columns - R * Gt, L), np.float32)
    for c in range(nch):
        for pc in range(pl.pcs):
            for u in range(P):
                for s in range(S):
                    bank = pc * p.banks_per_pc + u * S + s
                    rows = blk[c, pc, u, s].reshape(pl.passes * pl.tiles, R * Gt, L)
                    for i, data in enumerate(rows):
                        image[(pl.channels[c], bank, base + i)] = (
                            np.concatenate([data, zero_tail]) if len(zero_tail) else data)
    return Placement(**{**pl.__dict__, "image": image})


def gemv_input(pl: Placement, x) -> np.ndarray:
    """Host input stream for `gemv_program`: x zero-padded to Kp, then tile 0 again (the
    prefetch after the last tile of a pass loads the next pass's tile 0 from there)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if len(x) != pl.K:
        raise SpecccError(f"gemv input has {len(x)} elements, the matrix has K={pl.K}")
    return gemv_inputs(pl, x.reshape(1, -1))


def gemv_inputs(pl: Placement, X) -> np.ndarray:
    """The streams of every row of X (rows, K), one after another, built in one array."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != pl.K:
        raise SpecccError(f"gemv input rows have {X.shape[-1]} elements, the matrix has "
                          f"K={pl.K}")
    out = np.zeros((len(X), pl.Kp + pl.tile_elems), np.float32)
    out[:, :pl.K] = X
    t = min(pl.tile_elems, pl.K)
    out[:, pl.Kp:pl.Kp + t] = X[:, :t]
    return out.reshape(-1)


def gemv_output(pl: Placement, host_out: dict, dst: int = 0) -> np.ndarray:
    """y (M,) from the RDMAC results: lane partial sums (reduce="lanes") and per-tile
    partial sums ("tiles" order) are added by the host in fp32; block d holds outputs
    d*P .. d*P+P-1."""
    return gemv_outputs(pl, host_out, [dst])[0]


def gemv_outputs(pl: Placement, host_out: dict, dsts) -> np.ndarray:
    """gemv_output of every result block starting at one of `dsts`, as (len(dsts), M):
    one stack of the results, the same fp32 sums."""
    per = pl.tiles if pl.order == "tiles" else 1
    n = pl.blocks * per
    from speccc.targets.pim.host_out import stack_outputs
    keys = (np.asarray(dsts, np.int64)[:, None] + np.arange(n)).reshape(-1)
    try:
        got = stack_outputs(host_out, keys).astype(np.float32, copy=False)
    except KeyError as e:
        raise SpecccError(f"gemv result {e.args[0]} was never read out (RDMAC missing)") from None
    # one fp32 lane sum per block and tile, then tiles added in order (as the host would)
    part = got.sum(axis=-1, dtype=np.float32).reshape(len(dsts), pl.blocks, per, pl.pus)
    if per == 1:
        acc = part[:, :, 0] + np.float32(0)      # 0 + x: as the loop below, -0 -> +0
    else:
        acc = np.zeros((len(dsts), pl.blocks, pl.pus), np.float32)
        for t in range(per):
            acc += part[:, :, t]
    return acc.reshape(len(dsts), -1)[:, :pl.M]
