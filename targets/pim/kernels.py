"""The PIM kernel base (Work, Kernel: phases -> listings, run through the emulator) and
the kernels built on it: linear / matmul / matmul_nbits (GemvKernel), gated_mlp
(GatedMlpKernel, whose `act` phase is an elementwise plan) and elementwise ops (EwPlan,
ElementwiseKernel). Attention: attention_kernel.py; the entry point and the phase
table: codegen.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from speccc.errors import SpecccError
from speccc.hw.config import dtype_bytes
from speccc.targets.pim.emulator import PimEmulator
from speccc.targets.pim.gemv import gemv_tokens
from speccc.targets.pim.isa import ew_slots
from speccc.targets.pim.layout import Placement, gemv_inputs, gemv_outputs, layout_matrix
from speccc.targets.pim.listing import Affine, Program, cmd, loop, loop_or_inline
from speccc.targets.pim.op_layout import ELEMENTWISE, MLP_AF, Region


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
    out = _run(emu, prog, gemv_inputs(pl, X))
    return gemv_outputs(pl, out, range(0, len(X) * pl.outputs, pl.outputs))


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
        return loop_or_inline("c", self.nch, loop_or_inline("r", self.rounds, per),
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
