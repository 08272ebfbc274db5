"""PIM code generation: each PIM-assigned op becomes one or more listings ("phases"),
with the host (NPU) work between phases; the same kernels run functionally on the
emulator (`speccc exec --on emulator`) and are timed by it (`speccc compile`).

    k = kernel_for(op.name, op.attrs, hw, operand_shapes)   # placement from op.attrs
    for phase, program in k.phases(): ...                  # listings (byte-deterministic)
    outs = k.run(emu, operand_arrays)                      # functional, through the emulator

One listing per op and phase (phases are separated by host work, so each is its own
emulator run; every listing ends with SYNC and leaves every bank closed and every
accumulator read out):

| op | phases | host between / after |
|---|---|---|
| linear, matmul (2-D weight), matmul_nbits | `gemv` | bias add |
| gated_mlp | `gate_up` (one GEMV over [gate; up] stacked, x sent once), `act` (elementwise on PIM: EWADD-load gate, AF silu/gelu, EWMUL up), `down` | none (activations other than silu / gelu-tanh: on the host) |
| attention | `score` (append the new keys, q·Kᵀ for every query head and position), `context` (append the new values, p·V); the query rows of a kv head share row visits (MACN.ab, up to token_slots) | scale, causal / window / mask, softmax |
| add, mul, relu, gelu (tanh), swish (alpha 1), swiglu (alpha 1) | `ew` | operand broadcast |

GEMVs (layout.py / gemv.py): W (M x K) zero-padded to the placement's Mp x Kp (padding
costs time, never changes y); T rows of x (prefill/verify) are `loop tok T` over the same
placement, x re-sent per row. matmul_nbits weights are dequantized at placement (banks
hold 16-bit words; the ISA has no n-bit MAC). KV cache: kv_layout.py. Elementwise: each
chunk of P*acc_lanes elements (one accumulator of every PU) is loaded from the global
buffer with EWADD into a cleared accumulator, transformed with AF/EWMUL/EWADD and read
out with RDMAC; chunks go round-robin over channels and pseudo-channels.

Why gated_mlp's activation is a separate `act` phase rather than an AF before the
gate GEMV's RDMAC: on HBM-PIM the registers hold per-lane partial sums, and on AiM/AttAcc
large GEMVs run in "tiles" order (per-tile partial sums), so the accumulator never holds
the finished gate value; and the x tiles fill the global buffer, leaving no slots for
EWMUL's second operand.

Placement attributes (passes/place.py): `pim_base_row`, `pim_rows`, `pim_channels` (the
op's channel window), `pim_max_context` (attention). An op's regions stack from
pim_base_row in `op_layouts` order; each region uses the first channels of the window
it needs (keys: the whole window).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.hw.config import dtype_bytes
from speccc.targets.pim import kv_layout as kv
from speccc.targets.pim.emulator import PimEmulator, PimResult, time_program
from speccc.targets.pim.phase import phase_cost
from speccc.targets.pim.gemv import gemv_body, gemv_tokens
from speccc.targets.pim.isa import ew_slots
from speccc.targets.pim.layout import Placement, gemv_input, gemv_output, layout_matrix, plan_matrix
from speccc.targets.pim.listing import Affine, Command, Loop, Program, cmd, loop

GEMV_OPS = ("linear", "matmul", "matmul_nbits", "gated_mlp")
ATTENTION_OPS = ("attention",)
PLACED_OPS = GEMV_OPS + ATTENTION_OPS
ELEMENTWISE = {
    "add": [("load", 0), ("add", 1)],
    "mul": [("load", 0), ("mul", 1)],
    "relu": [("load", 0), ("af", "relu")],
    "gelu": [("load", 0), ("af", "gelu")],
    "swish": [("load", 0), ("af", "silu")],
    "swiglu": [("load", 0), ("af", "silu"), ("mul", 1)],
}
PIM_LOWERABLE = frozenset(PLACED_OPS) | frozenset(ELEMENTWISE)
MLP_AF = {"silu": "silu", "gelu_tanh": "gelu"}
PLACEMENT_ATTRS = ("pim_base_row", "pim_rows", "pim_channels", "pim_max_context")


def unsupported_reason(name: str, attrs: dict, shapes: list | None = None) -> str | None:
    """Why op `name` cannot run on PIM (None if it can; `shapes`: operand shapes, when
    known, for the checks that depend on them)."""
    if name not in PIM_LOWERABLE:
        return (f"no PIM lowering for '{name}' (PIM runs: "
                f"{', '.join(sorted(PIM_LOWERABLE))})")
    if name == "gelu" and attrs.get("approximate", "none") != "tanh":
        return "PIM's AF gelu is the tanh form; erf gelu has no PIM lowering"
    if name in ("swish", "swiglu") and float(attrs.get("alpha", 1.0)) != 1.0:
        return f"{name} with alpha != 1 has no PIM lowering (AF silu is alpha 1)"
    if name == "matmul" and shapes is not None and (len(shapes) < 2 or len(shapes[1]) != 2):
        return "matmul on PIM needs a 2-D stored weight as its second operand"
    return None


# ------------------------------------------------------------------ layouts ----
@dataclass(frozen=True)
class Region:
    name: str
    layout: object            # Placement | KeyLayout | ValueLayout
    rows: int
    channels: int             # channels of the window it touches (from the start)


def op_dims(name: str, attrs: dict, shapes: list) -> dict:
    """The sizes placement and codegen need, from operand shapes (ints)."""
    if name in ("linear", "matmul"):
        w = shapes[1]
        k, n = (w[1], w[0]) if attrs.get("transpose_w") else (w[0], w[1])
        return {"M": n, "K": k}
    if name == "matmul_nbits":
        return {"M": attrs["N"], "K": attrs["K"]}
    if name == "gated_mlp":
        k = shapes[0][-1]
        f = shapes[1][1] // 2 if len(shapes) == 3 else shapes[1][1]
        return {"K": k, "F": f, "N": shapes[-1][1]}
    if name == "attention":
        q, k = shapes[0], shapes[1]
        return {"B": q[0], "H": q[1], "T": q[2], "D": q[3], "G": k[1], "S": k[2]}
    return {}


def op_layouts(name: str, hw, dims: dict, *, base: int = 0, window=None,
               max_context: int | None = None) -> list[Region]:
    """The regions of a placed op, stacked from `base` within the channel `window`."""
    p = hw.pim
    window = tuple(range(p.channels)) if window is None else tuple(window)
    regions: list[Region] = []

    def gemv(rname: str, M: int, K: int) -> None:
        at = base + sum(r.rows for r in regions)
        nat = plan_matrix(hw, M, K)
        n = min(len(nat.channels), len(window))
        pl = plan_matrix(hw, M, K, base=0, channels=window[:n])
        pl = dataclasses.replace(pl, base=at)
        regions.append(Region(rname, pl, pl.rows_used, n))

    if name in ("linear", "matmul", "matmul_nbits"):
        gemv("W", dims["M"], dims["K"])
    elif name == "gated_mlp":
        gemv("gate_up", 2 * dims["F"], dims["K"])
        gemv("down", dims["N"], dims["F"])
    elif name == "attention":
        if max_context is None:
            raise SpecccError("attention placement needs max_context")
        # each request of the batch gets its own keys and values region (a KV row never
        # holds two requests' tokens), stacked request after request
        for r in range(attention_requests(dims)):
            at = base + sum(x.rows for x in regions)
            kl = kv.plan_keys(hw, dims["D"], dims["G"], max_context, base=at, channels=window)
            regions.append(Region(f"keys{r}" if r else "keys", kl, kl.rows, len(window)))
            vl = kv.plan_values(hw, dims["D"], dims["G"], max_context, base=at + kl.rows,
                                channels=window)
            regions.append(Region(f"values{r}" if r else "values", vl, vl.rows,
                                  vl.groups * vl.per_head))
    return regions


def attention_requests(dims: dict) -> int:
    """Requests (batch rows) an attention op's placement holds KV for: its bound batch
    dimension, 1 when unbound."""
    return dims.get("B") or 1


# ------------------------------------------------------------------ kernels ----
@dataclass
class Work:
    """What the op inherently does, for its roofline: bytes streamed from banks (16-bit
    words), unique bytes in/out over the external bus, lane MACs, PU element ops."""
    internal_bytes: float = 0.0
    external_bytes: float = 0.0
    macs: float = 0.0
    pu_elems: float = 0.0


class Kernel:
    op: str = ""
    name: str = "op"

    def phases(self) -> list[tuple[str, Program]]:
        raise NotImplementedError

    def run(self, emu: PimEmulator, ins: list, *, load: bool = True) -> list:
        raise NotImplementedError

    def work(self) -> Work:
        raise NotImplementedError

    def _program(self, phase: str, body: list) -> Program:
        return Program(tuple(body) + (cmd("SYNC"),), self.hw.name, f"{self.name}.{phase}.pim")


def _run(emu: PimEmulator, prog: Program, stream) -> dict:
    emu.set_input(np.asarray(stream, np.float32))
    emu.state.host_out.clear()
    emu.run(prog)
    return emu.outputs


def _stream_bursts(pl: Placement) -> int:
    return (pl.Kp + pl.tile_elems) // pl.lanes


def _gemv_rows(hw, pl: Placement, rows: int) -> list:
    """GEMVs of every row of x (host stream and outputs per row), as many rows per row
    visit as the PUs buffer (gemv.gemv_tokens)."""
    return gemv_tokens(hw, pl, rows, stream=_stream_bursts(pl))


def _gemv_run(emu, prog, pl: Placement, X: np.ndarray) -> np.ndarray:
    X = X.reshape(-1, pl.K)
    out = _run(emu, prog, np.concatenate([gemv_input(pl, x) for x in X]))
    return np.stack([gemv_output(pl, out, r * pl.outputs) for r in range(len(X))])


def _rows(shape) -> int:
    return int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1


class GemvKernel(Kernel):
    """linear / matmul (2-D weight) / matmul_nbits: y = x W (+ b)."""

    def __init__(self, hw, op: str, attrs: dict, shapes: list, regions: list[Region], name: str):
        self.hw, self.op, self.attrs, self.name = hw, op, attrs, name
        self.pl = regions[0].layout
        self.rows = _rows(shapes[0])
        self._prog = None

    def phases(self):
        if self._prog is None:
            self._prog = self._program("gemv", _gemv_rows(self.hw, self.pl, self.rows))
        return [("gemv", self._prog)]

    def weight(self, ins) -> np.ndarray:
        if self.op in ("linear", "matmul"):
            w = np.asarray(ins[1], np.float32)
            return w if self.attrs.get("transpose_w") else w.T
        from speccc.ir.ops.quant import nbits_dequant
        from speccc.ir.opdefs import lookup
        attrs = lookup("matmul_nbits").full_attrs(self.attrs)
        return nbits_dequant(ins[1], ins[2], ins[3] if len(ins) > 3 else None,
                             ins[4] if len(ins) > 4 else None, attrs)

    def run(self, emu, ins, *, load=True):
        x = ins[0]
        if load:
            emu.load_image(layout_matrix(self.hw, self.weight(ins), base=self.pl.base,
                                         channels=self.pl.channels, order=self.pl.order).image)
        y = _gemv_run(emu, self.phases()[0][1], self.pl, np.asarray(x, np.float32))
        if self.op == "linear" and len(ins) == 3:
            y = y + np.asarray(ins[2], np.float32).reshape(-1)
        return [y.reshape(tuple(x.shape[:-1]) + (self.pl.M,)).astype(x.dtype)]

    def work(self):
        ob = dtype_bytes(self.hw.pim.pu.out_dtype)
        M, K, R = self.pl.M, self.pl.K, self.rows
        return Work(2.0 * M * K * R, float(R * (2 * K + ob * M)), float(M * K * R))


class GatedMlpKernel(Kernel):
    """down(act(x Wg) * (x Wu)): `gate_up`, `act` (PIM when AF has it), `down`."""

    def __init__(self, hw, op, attrs, shapes, regions, name):
        self.hw, self.op, self.attrs, self.name = hw, op, attrs, name
        self.up_pl, self.down_pl = regions[0].layout, regions[1].layout
        self.rows = _rows(shapes[0])
        self.F = self.down_pl.K
        self.fn = MLP_AF.get(attrs.get("activation", "silu"))
        self.ew = (EwPlan(hw, self.rows * self.F, [("load", 0), ("af", self.fn), ("mul", 1)], 2,
                          window=attrs.get("pim_channels")) if self.fn else None)
        self._phases = None

    def phases(self):
        if self._phases is None:
            ph = [("gate_up", self._program("gate_up", _gemv_rows(self.hw, self.up_pl, self.rows)))]
            if self.ew:
                ph.append(("act", self._program("act", self.ew.body())))
            ph.append(("down", self._program("down", _gemv_rows(self.hw, self.down_pl, self.rows))))
            self._phases = ph
        return self._phases

    def run(self, emu, ins, *, load=True):
        x = ins[0]
        F = self.F
        if load:
            if len(ins) == 4:
                wgu = np.concatenate([np.asarray(ins[1], np.float32).T,
                                      np.asarray(ins[2], np.float32).T])
            else:
                wgu = np.asarray(ins[1], np.float32).T
            for pl, w in ((self.up_pl, wgu), (self.down_pl, np.asarray(ins[-1], np.float32).T)):
                emu.load_image(layout_matrix(self.hw, w, base=pl.base, channels=pl.channels,
                                             order=pl.order).image)
        ph = dict(self.phases())
        gu = _gemv_run(emu, ph["gate_up"], self.up_pl, np.asarray(x, np.float32))
        gate, up = gu[:, :F].astype(x.dtype), gu[:, F:].astype(x.dtype)
        if self.ew:
            h = self.ew.run(emu, ph["act"], [gate.reshape(-1), up.reshape(-1)]).reshape(gate.shape)
        else:
            from speccc.ir.ops.llm import ACTIVATIONS
            act = ACTIVATIONS[self.attrs.get("activation", "silu")](gate.astype(np.float32))
            h = act.astype(x.dtype) * up
        y = _gemv_run(emu, ph["down"], self.down_pl, h.astype(x.dtype).astype(np.float32))
        return [y.reshape(tuple(x.shape[:-1]) + (self.down_pl.M,)).astype(x.dtype)]

    def work(self):
        ob = dtype_bytes(self.hw.pim.pu.out_dtype)
        K, F, N, R = self.up_pl.K, self.F, self.down_pl.M, self.rows
        macs = R * (2 * F * K + N * F)
        return Work(2.0 * macs, float(R * (2 * K + ob * N)), float(macs), float(3 * R * F))


class AttentionKernel(Kernel):
    """softmax(q Kᵀ * scale, masked) V on PIM GEMVs; softmax on the host. A batch of B
    requests has B keys/values regions (op_layouts); each listing runs request after
    request, request r's host input and results in its own block."""

    def __init__(self, hw, op, attrs, shapes, regions, name):
        self.hw, self.op, self.attrs, self.name = hw, op, attrs, name
        d = op_dims(op, attrs, shapes)
        if d["S"] < d["T"]:
            raise SpecccError(f"attention: {d['S']} keys for {d['T']} queries; PIM appends "
                              "the last T keys to the cache")
        self.kls = [r.layout for r in regions[0::2]]
        self.vls = [r.layout for r in regions[1::2]]
        self.B = d["B"]
        self.kl, self.vl = self.kls[0], self.vls[0]
        if d["S"] > self.kl.max_context:
            raise SpecccError(f"attention over {d['S']} keys exceeds the placed max_context "
                              f"{self.kl.max_context}")
        self.H, self.T, self.S, self.D, self.G = d["H"], d["T"], d["S"], d["D"], d["G"]
        self.first = self.S - self.T
        self._phases = None

    def _q_bursts(self) -> int:
        return self.H * self.T * self.kl.width

    def _score_block(self) -> tuple[int, int]:
        """(host input bursts, result slots) of one request in the score listing."""
        append = self.G * self.T * self.kl.width
        return self._q_bursts() + append, self.H * self.T * kv.score_outputs(self.kl)

    def _ctx_bursts(self) -> int:
        return self.H * self.T * _stream_bursts(self.vl.placements(self.S)[0])

    def _ctx_block(self) -> tuple[int, int]:
        """(host input bursts, result slots) of one request in the context listing."""
        pls = self.vl.placements(self.S)
        append = kv.value_append_bursts(self.vl, self.first, self.T)
        return self._ctx_bursts() + append, self.H * self.T * len(pls) * pls[0].outputs

    def phases(self):
        if self._phases is None:
            hw, H, T, S = self.hw, self.H, self.T, self.S
            (sin, sout), (cin, cout) = self._score_block(), self._ctx_block()
            score: list = []
            ctx: list = []
            for r, (kl, vl) in enumerate(zip(self.kls, self.vls)):
                score += (kv.key_append(kl, self.first, T, r * sin + self._q_bursts())
                          + kv.score_body(hw, kl, S, heads=H, positions=T, src=r * sin,
                                          dst=r * sout))
                ctx += (kv.value_append(hw, vl, self.first, T, r * cin + self._ctx_bursts())
                        + kv.context_body(hw, vl, S, heads=H, positions=T, src=r * cin,
                                          dst=r * cout))
            self._phases = [("score", self._program("score", score)),
                            ("context", self._program("context", ctx))]
        return self._phases

    def run(self, emu, ins, *, load=True):
        q, k, v = (np.asarray(a) for a in ins[:3])
        ph = dict(self.phases())
        H, T, S, W = self.H, self.T, self.S, self.kl.width
        K, V = k.astype(np.float32), v.astype(np.float32)
        stream = []
        for r, (kl, vl) in enumerate(zip(self.kls, self.vls)):
            emu.load_image(kv.key_image(kl, K[r], self.first))
            emu.load_image(kv.value_image(self.hw, vl, V[r], self.first))
            qs = np.zeros((H, T, W * kl.lanes), np.float32)
            qs[..., :self.D] = q[r].astype(np.float32)
            stream += [qs.reshape(-1), kv.key_append_stream(kl, K[r], self.first, T)]
        out = _run(emu, ph["score"], np.concatenate(stream))
        sout, cout = self._score_block()[1], self._ctx_block()[1]
        scores = np.stack([kv.key_scores(kl, out, S, heads=H, positions=T, dst=r * sout)
                           for r, kl in enumerate(self.kls)])
        probs = attention_probs(scores, self.attrs, ins[3] if len(ins) > 3 else None)
        stream = []
        for r, vl in enumerate(self.vls):
            stream += [kv.context_stream(vl, probs[r]),
                       kv.value_append_stream(vl, V[r], self.first, T)]
        out = _run(emu, ph["context"], np.concatenate(stream))
        ctx = np.stack([kv.context_outputs(vl, out, S, heads=H, positions=T, dst=r * cout)
                        for r, vl in enumerate(self.vls)])
        return [ctx.astype(q.dtype)]

    def work(self):
        ob = dtype_bytes(self.hw.pim.pu.out_dtype)
        H, T, S, D, G = self.H, self.T, self.S, self.D, self.G
        ext = H * T * (2 * D + ob * S + 2 * S + ob * D) + 2 * 2 * G * T * D
        return Work(2.0 * 2 * H * T * S * D * self.B, float(ext * self.B),
                    float(2 * H * T * S * D * self.B))


def attention_probs(scores: np.ndarray, attrs: dict, mask) -> np.ndarray:
    """The host half of attention: scale, causal/sliding window, mask, softmax (as the
    attention op's reference semantics), on [B, H, T, S] f32 scores."""
    s = scores.astype(np.float32) * np.float32(attrs["scale"])
    t, kv_len = s.shape[-2], s.shape[-1]
    if attrs.get("causal"):
        pos, key = (kv_len - t + np.arange(t))[:, None], np.arange(kv_len)[None, :]
        allowed = key <= pos
        if attrs.get("sliding_window"):
            allowed &= key > pos - attrs["sliding_window"]
        s = np.where(allowed, s, -np.inf)
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask.astype(np.float32)
    with np.errstate(invalid="ignore"):
        s = s - s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p = p / p.sum(axis=-1, keepdims=True)
    if attrs.get("nan_to_zero"):
        p = np.where(np.isnan(p), np.float32(0), p)
    return p.astype(np.float32)


# -------------------------------------------------------------- elementwise ----
class EwPlan:
    """An elementwise program over n elements: chunks of E = P*acc_lanes (one accumulator
    of every PU of a pseudo-channel), chunk k = (r*channels + c)*PCS + p for round r;
    steps ("load", i) | ("add", i) | ("mul", i) | ("af", fn) on accumulator 0."""

    def __init__(self, hw, n: int, steps: list, nops: int, window=None):
        p = hw.pim
        self.hw, self.n, self.steps, self.nops = hw, n, steps, nops
        self.E = p.pus_per_pc * p.acc_lanes
        self.ew = ew_slots(p)
        self.chunks = max(1, math.ceil(n / self.E))
        # the channels it may use: its op's window (a contiguous range), else all
        window = list(window) if window else list(range(p.channels))
        if window != list(range(window[0], window[0] + len(window))):
            raise SpecccError(f"elementwise channel window {window} is not contiguous")
        self.ch0 = window[0]
        self.nch = min(len(window), math.ceil(self.chunks / p.pseudo_channels))
        self.rounds = math.ceil(self.chunks / (self.nch * p.pseudo_channels))
        self.separate = nops * self.ew <= p.gb_slots

    def body(self) -> list:
        p, ew = self.hw.pim, self.ew
        c, r = Affine.of("c"), Affine.of("r")
        per: list = []
        ch = c + self.ch0
        for pc in range(p.pseudo_channels):
            k = (r * self.nch + c) * p.pseudo_channels + pc
            for op, arg in self.steps:
                if op == "af":
                    per.append(cmd("AF", ch=ch, pc=pc, acc=0, fn=arg))
                    continue
                slot0 = arg * ew if self.separate else 0
                w = Affine.of("w") if ew > 1 else Affine(0)
                wr = cmd("WRGB", ch=ch, pc=pc, slot=w + slot0, src=(k * self.nops + arg) * ew + w)
                per += [loop("w", ew, [wr])] if ew > 1 else [wr]
                kind = {"load": "EWADD", "add": "EWADD", "mul": "EWMUL"}[op]
                per.append(cmd(kind, ch=ch, pc=pc, acc=0, slot=slot0))
            per.append(cmd("RDMAC", ch=ch, pc=pc, acc=0, dst=k))
        return kv.loop_or_inline("c", self.nch, kv.loop_or_inline("r", self.rounds, per),
                                 comment=f" elementwise over {self.n} values")

    def stream(self, operands: list) -> np.ndarray:
        L = self.hw.pim.pu.lanes
        total = self.chunks_padded
        buf = np.zeros((total, self.nops, self.ew * L), np.float32)
        for i, x in enumerate(operands):
            flat = np.zeros(total * self.E, np.float32)
            flat[:self.n] = np.asarray(x, np.float32).reshape(-1)
            buf[:, i, :self.E] = flat.reshape(total, self.E)
        return buf.reshape(-1)

    @property
    def chunks_padded(self) -> int:
        return self.rounds * self.nch * self.hw.pim.pseudo_channels

    def run(self, emu, prog, operands: list) -> np.ndarray:
        out = _run(emu, prog, self.stream(operands))
        vals = [np.asarray(out[k], np.float32).reshape(-1) for k in range(self.chunks_padded)]
        return np.concatenate(vals)[:self.n]


class ElementwiseKernel(Kernel):
    def __init__(self, hw, op, attrs, shapes, out_shape, name):
        self.hw, self.op, self.attrs, self.name = hw, op, attrs, name
        self.out_shape = tuple(out_shape)
        n = int(np.prod(self.out_shape, dtype=np.int64))
        steps = ELEMENTWISE[op]
        self.plan = EwPlan(hw, n, steps, len(shapes), window=attrs.get("pim_channels"))
        self._prog = None

    def phases(self):
        if self._prog is None:
            self._prog = self._program("ew", self.plan.body())
        return [("ew", self._prog)]

    def run(self, emu, ins, *, load=True):
        ops = [np.broadcast_to(np.asarray(a, np.float32), self.out_shape) for a in ins]
        y = self.plan.run(emu, self.phases()[0][1], ops)
        return [y.reshape(self.out_shape).astype(np.asarray(ins[0]).dtype)]

    def work(self):
        ob = dtype_bytes(self.hw.pim.pu.out_dtype)
        n = self.plan.n
        return Work(0.0, float(n * (2 * self.plan.nops + ob)), 0.0,
                    float(n * sum(1 for s in self.plan.steps)))


# ------------------------------------------------------------------ entry ------
def broadcast_shape(shapes: list) -> tuple:
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def kernel_for(name: str, attrs: dict, hw, shapes: list, *, label: str = "op") -> Kernel:
    """The kernel of one PIM op for concrete operand shapes; placed ops read their
    placement from attrs (pim_base_row, pim_channels, pim_max_context)."""
    shapes = [tuple(int(d) for d in s) for s in shapes]
    why = unsupported_reason(name, attrs, shapes)
    if why:
        raise SpecccError(why, location=label)
    if name in ELEMENTWISE:
        return ElementwiseKernel(hw, name, attrs, shapes, broadcast_shape(shapes), label)
    missing = [a for a in ("pim_base_row", "pim_channels") if a not in attrs]
    if missing or (name == "attention" and "pim_max_context" not in attrs):
        raise SpecccError(f"{name} assigned to PIM has no placement ({', '.join(missing) or 'pim_max_context'}"
                          " missing): run the `place` pass first", location=label)
    regions = op_layouts(name, hw, op_dims(name, attrs, shapes), base=attrs["pim_base_row"],
                         window=attrs["pim_channels"], max_context=attrs.get("pim_max_context"))
    rows = sum(r.rows for r in regions)
    if rows > attrs.get("pim_rows", rows):
        batch = (f" (batch {op_dims(name, attrs, shapes)['B']}: KV for every request)"
                 if name == "attention" else "")
        raise SpecccError(f"{name} on PIM needs {rows} rows per bank{batch}, but its placement "
                          f"holds {attrs['pim_rows']}: place it with these shapes bound",
                          location=label)
    cls = {"linear": GemvKernel, "matmul": GemvKernel, "matmul_nbits": GemvKernel,
           "gated_mlp": GatedMlpKernel,
           "attention": AttentionKernel}[name]
    return cls(hw, name, attrs, shapes, regions, label)


def normalized_attrs(attrs: dict) -> dict:
    """The same placement moved to row 0 and channel 0: timing does not depend on row
    numbers or on which channels (all channels share one refresh grid), so programs
    that differ only there time identically (compile caches on this)."""
    out = dict(attrs)
    if "pim_base_row" in out:
        out["pim_base_row"] = 0
    if "pim_channels" in out:
        out["pim_channels"] = list(range(len(out["pim_channels"])))
    return out


# ------------------------------------------------------------------ stats ------
def program_io(prog: Program, hw) -> tuple[int, int]:
    """(bytes in, bytes out) over the external bus: WR/WRGB bursts in, RD/RDMAC out."""
    p = hw.pim
    per = {"WR": (1, 0), "WRGB": (1, 0), "RD": (0, 1), "RDMAC": (0, p.rdmac_bursts)}

    def walk(body) -> tuple[int, int]:
        i = o = 0
        for node in body:
            if isinstance(node, Command):
                a, b = per.get(node.op, (0, 0))
                i, o = i + a, o + b
            elif isinstance(node, Loop):
                a, b = walk(node.body)
                i, o = i + node.count * a, o + node.count * b
        return i, o

    i, o = walk(prog.body)
    return i * p.burst_bytes, o * p.burst_bytes


def roofline(hw, work: Work) -> tuple[float, str]:
    """(ns, bound): the op's inherent bank bytes at peak internal bandwidth vs its unique
    input/output bytes at peak external bandwidth (and MACs at peak MAC rate)."""
    d = hw.derived()
    t_int = max(work.internal_bytes / d["peak_internal_gbs"],
                work.macs / d["peak_pim_macs_per_s"] * 1e9)
    t_ext = work.external_bytes / d["peak_external_gbs"]
    return (t_int, "internal") if t_int >= t_ext else (t_ext, "external")


class Timer:
    """Times kernels' phases with the emulator, caching identical (normalized) programs;
    each listing is charged as one phase of a step (phase.py: refresh debt, mode switches)."""

    def __init__(self, hw):
        self.hw = hw
        self.cache: dict[str, PimResult] = {}

    def time(self, program: Program) -> PimResult:
        from speccc.targets.pim.listing import format_program
        key = format_program(program)
        res = self.cache.get(key)
        if res is None:
            res = self.cache[key] = phase_cost(self.hw, program, time_program(program, self.hw))
        return res
