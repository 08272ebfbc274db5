"""Functional model: numpy bank rows, global buffers, PU accumulators, host buffers.

Precision (device mode, per preset [pim.pu]):
- bank words and global-buffer words are stored in `mul_dtype` (fp16 or bf16, RNE);
- a lane product is exact in fp32 (11- or 8-bit significands);
- reduce = "tree": the 16 products of one MAC are summed in fp32 (the adder tree), then
  added to the accumulator and rounded once to `acc_dtype`;
- reduce = "lanes": each lane adds its product to its own accumulator, rounded once to
  `acc_dtype` (fp16 on HBM-PIM);
- RDMAC rounds the register to `out_dtype` and clears it.
mode="fp32" is a precision oracle, not a device: every word, product and sum stays fp32,
so a GEMV equals numpy's fp32 result up to summation order. Addresses and timing are
the same in both modes.
Functional effects happen in program order; timing never changes values.

Two engines compute the same bits: "loop" (default, vectorised.py) runs a whole listing,
loop bodies included, as numpy over every command instance at once; "command" steps
through every command instance and is the oracle the tests compare it with.

Bank rows live in one pool array (`pool`, row 0 all zeros for rows never written) so the
vectorised engine gathers words with one index operation; `rows` is a read-only mapping
{(ch, bank, row): row} over it.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from speccc.errors import SpecccError
from speccc.targets.pim.host_out import HostOut
from speccc.targets.pim.isa import OPS, ew_slots, pu_of_bank, token_operands, touched_banks
from speccc.targets.pim.listing import Command, Loop, Program


def round_to(dtype: str, x: np.ndarray) -> np.ndarray:
    """Round float32 values to fp16/bf16 (round to nearest even), returned as float32."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp32":
        return x
    if dtype == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float32)
    # bf16: add half an ulp (ties to even) to the bits and clear the low 16. Done in
    # uint32: the low 32 bits of the sum are the same whether it wraps or not (it can
    # only for NaNs, which keep their own bits anyway).
    bits = x.view(np.uint32)
    rounded = (bits >> 16) & 1
    rounded += 0x7FFF
    rounded += bits
    rounded &= 0xFFFF0000
    out = rounded.view(np.float32)
    nan = np.isnan(x)
    return np.where(nan, x, out) if nan.any() else out


AF = {
    "relu": lambda v: np.maximum(v, 0),
    "gelu": lambda v: 0.5 * v * (1 + np.tanh(0.7978845608 * (v + 0.044715 * v ** 3))),
    "silu": lambda v: v / (1 + np.exp(-v)),
}


ENGINES = ("loop", "command")
DEFAULT_ENGINE = "loop"


class RowView(Mapping):
    """{(ch, bank, row): (columns, lanes) array} of the rows written so far (views into
    the pool: read them, write through FunctionalState)."""

    def __init__(self, st: "FunctionalState"):
        self._st = st

    def __getitem__(self, key):
        row = self._st.pool[self._st.index[tuple(key)]]
        row.flags.writeable = False     # writes go through load_image / WR (they count)
        return row

    def __iter__(self):
        return iter(self._st.index)

    def __len__(self) -> int:
        return len(self._st.index)


class FunctionalState:
    def __init__(self, hw, mode: str = "device", engine: str | None = None):
        if mode not in ("device", "fp32"):
            raise SpecccError(f"unknown precision mode {mode!r} (device or fp32)")
        engine = engine or DEFAULT_ENGINE
        if engine not in ENGINES:
            raise SpecccError(f"unknown functional engine {engine!r} ({' or '.join(ENGINES)})")
        self.engine = engine
        self._vector = None
        p = hw.pim
        self.hw, self.pim, self.mode = hw, p, mode
        self.store = "fp32" if mode == "fp32" else p.pu.mul_dtype
        self.accd = "fp32" if mode == "fp32" else p.pu.acc_dtype
        self.outd = "fp32" if mode == "fp32" else p.pu.out_dtype
        self.pool = np.zeros((64, p.columns, p.pu.lanes), np.float32)   # row 0: never written
        self.written = np.zeros(64, np.int64)   # writes per pool row (vectorised.py caches reads)
        self.index: dict[tuple[int, int, int], int] = {}                  # (ch, bank, row) -> pool row
        self.layout_version = 0     # bumped when a row is added to `index` (vectorised.py caches)
        self.rows = RowView(self)
        self.gb = np.zeros((p.channels, p.pseudo_channels, p.gb_slots_total, p.pu.lanes), np.float32)
        self.acc = np.zeros((p.channels, p.pseudo_channels, p.acc_total, p.pus_per_pc,
                             p.acc_lanes), np.float32)
        self.host_in = np.zeros((0, p.pu.lanes), np.float32)
        self.host_out: dict[int, np.ndarray] = HostOut()

    def slot(self, key: tuple[int, int, int]) -> int:
        """The pool row holding bank row `key`, added (zeros) if it was never written."""
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.index) + 1
            if i >= len(self.pool):
                grown = np.zeros((2 * len(self.pool),) + self.pool.shape[1:], np.float32)
                grown[:len(self.pool)] = self.pool
                self.pool = grown
                self.written = np.concatenate([self.written, np.zeros_like(self.written)])
            self.layout_version += 1
        return i

    # ------------------------------------------------------------ loading ----
    def load_image(self, image: dict) -> None:
        """image: {(ch, bank, row): array (columns, lanes)} -> bank rows (rounded to storage)."""
        shape = (self.pim.columns, self.pim.pu.lanes)
        if not image:
            return
        dense = getattr(image, "dense", None)      # a row_image.RowImage: one assignment
        if dense is not None and dense.shape[1:] == shape:
            at = image.plan.slots(self)
            self.pool[at] = round_to(self.store, dense)
            self.written[at] += 1
            return
        for key, arr in image.items():
            if np.shape(arr) != shape:
                raise SpecccError(f"memory image row {key}: shape {np.shape(arr)}, expected {shape}")
        at = [self.slot(tuple(key)) for key in image]
        self.pool[at] = round_to(self.store, np.stack(list(image.values())))
        self.written[at] += 1

    def set_input(self, data) -> None:
        """Host input stream, read by WRGB/WR in bursts of `lanes` words (zero-padded)."""
        flat = np.asarray(data, dtype=np.float32).reshape(-1)
        lanes = self.pim.pu.lanes
        pad = (-len(flat)) % lanes
        self.host_in = np.concatenate([flat, np.zeros(pad, np.float32)]).reshape(-1, lanes)

    def row(self, ch: int, bank: int, row: int) -> np.ndarray:
        return self.pool[self.index.get((ch, bank, row), 0)]

    # ---------------------------------------------------------------- run ----
    def run(self, program: Program) -> None:
        if self.engine == "command":
            return self._body(program.body, {}, program.name)
        if self._vector is None:
            from speccc.targets.pim.vectorised import VectorEngine
            self._vector = VectorEngine(self)
        self._vector.run(program)

    def _body(self, body, env, name) -> None:
        for node in body:
            if isinstance(node, Command):
                self._exec(node, env, name)
            elif isinstance(node, Loop):
                for i in range(node.count):
                    if node.var:
                        env[node.var] = i
                    self._body(node.body, env, name)
                env.pop(node.var, None)

    def _burst(self, src: int, c: Command, name: str) -> np.ndarray:
        if src >= len(self.host_in):
            raise SpecccError(f"{c.op} reads host input burst {src}, but only "
                              f"{len(self.host_in)} were provided", location=f"{name}:{c.line}:{c.col}")
        return round_to(self.store, self.host_in[src])

    def _exec(self, c: Command, env, name: str) -> None:
        spec = OPS[c.op]
        a = {n: (v if isinstance(v, str) else v.eval(env)) for n, v in c.args}
        p, kind = self.pim, spec.kind
        ch = a.get("ch", 0)
        pc = a["bank"] // p.banks_per_pc if "bank" in a else a.get("pc", 0)
        if kind == "WRGB":
            self.gb[ch, pc, a["slot"]] = self._burst(a["src"], c, name)
        elif kind == "WR":
            burst = self._burst(a["src"], c, name)
            at = self.slot((ch, a["bank"], a["row"]))
            self.pool[at, a["col"]] = burst
            self.written[at] += 1
        elif kind == "RD":
            self.host_out[a["dst"]] = self.row(ch, a["bank"], a["row"])[a["col"]].copy()
        elif kind in ("MAC", "MACab"):
            banks = touched_banks(p, spec, pc, a.get("bank"), a.get("sel", 0))
            data = np.stack([self.row(ch, b, a["row"])[a["col"]] for b in banks])
            pus = [pu_of_bank(p, b) for b in banks]
            n = a.get("n", 1)       # MACN.ab: token i has its own vector and acc set
            for slot, acc in zip(token_operands(p, "slot", a["slot"], n),
                                 token_operands(p, "acc", a["acc"], n)):
                prods = data * self.gb[ch, pc, slot][None, :]
                reg = self.acc[ch, pc, acc]
                if p.pu.reduce == "tree":
                    reg[pus, 0] = round_to(self.accd, reg[pus, 0] + prods.sum(axis=1, dtype=np.float32))
                else:
                    reg[pus] = round_to(self.accd, reg[pus] + prods)
        elif kind == "RDMAC":
            self.host_out[a["dst"]] = round_to(self.outd, self.acc[ch, pc, a["acc"]]).copy()
            self.acc[ch, pc, a["acc"]] = 0
        elif kind == "AF":
            reg = self.acc[ch, pc, a["acc"]]
            with np.errstate(over="ignore"):
                reg[...] = round_to(self.accd, AF[a["fn"]](reg.astype(np.float32)))
        elif kind in ("EWMUL", "EWADD"):
            reg = self.acc[ch, pc, a["acc"]]
            n = reg.size
            g = self.gb[ch, pc, a["slot"]:a["slot"] + ew_slots(p)].reshape(-1)[:n].reshape(reg.shape)
            reg[...] = round_to(self.accd, reg * g if kind == "EWMUL" else reg + g)
        # ACT/PRE/REF/SYNC have no functional effect (row-buffer contents equal the array).
