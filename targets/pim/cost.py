"""Calibrated PIM costs: run the PIM emulator on each op's actual GEMV shapes.

    pim_cost(hw, op, {"T": 1, "P": 128})   # OpCost: PimTarget.cost (targets/pim/target.py)

What runs (targets/pim: `plan_matrix` -> `gemv_body` -> `time_program`, timing only):
- linear / matmul / gemm with a stored 2-D weight: the N x K GEMV for every row of x
  (T x batch rows), as the codegen emits it: rows in groups of `token_slots` tokens, each
  group one weight pass whose MACs serve every token of the group (MACN.ab; a PU MACs
  mac_lanes tokens per PU clock), so on multi-lane PUs T rows cost about max(1, T/L)
  passes; with one token slot (the shipped presets) one pass per row;
- gated_mlp: the gate and up GEMVs (F x K) and the down GEMV (N x F), each per row;
- gather from a stored table (embeddings): the rows read out (RD), at the external
  bandwidth (not emulated);
- attention: per kv head a score GEMV (K_h: S x D, x = q) and a context GEMV (V_h^T:
  Dv x S, x = p) over the query rows sharing that kv head (its query heads x positions),
  token_slots rows per visit as kv_layout's listings group them; B requests are B x KVH
  matrices (each request's KV is its own region). Heads are spread over disjoint channel
  groups (each group as wide as one head's placement needs) and run concurrently; the
  groups meet at a SYNC. The GEMV proxy does not model the packed key layout:
  benchmarks/bench_pim_attention.py prices it at 0.98-2.56x the listings' time.
The work a PIM kernel does outside the banks (softmax between the two attention GEMVs,
SiLU x up in the MLP, bias) is charged as AttAcc charges its softmax unit: one operation
per byte of the device's external bandwidth (scale-snu/attacc_simulator src/config.py:
SOFTMAX_FLOPS = SOFTMAX_MEM_BW), plus pu_op_pj per operation; writing the T new K/V rows
into the banks costs their bytes at the external bandwidth and external_pj_per_bit.
PIM words are the preset's 16-bit mul_dtype whatever the IR dtype (an f32 weight is
stored as 16-bit words in the banks). Other ops use the roofline (costmodel.roofline_pim).

Each emulated program is charged as one phase (phase.py: refresh it did not see at the
average rate, and the standard's PIM mode switches once), as compile charges a listing.
Emulation is exact for up to EXACT_REPS repetitions of a GEMV; beyond that, the time,
energy and bytes are extrapolated linearly from emulated runs of 2 and EXACT_REPS
repetitions (the marginal repetition includes its refreshes; see tests).

Calibration cache: an emulated run is keyed by exactly what decides its program's timing
(`program_key`: the per-channel geometry, [pim.pu], [pim.timing] and the PIM energy
figures, the padded shape, repetitions, tokens per row visit, and the channels the
program spans) plus a digest of the sources that decide a run (`DIGEST_SOURCES`: the
emulator, codegen, timing tables, standards and the hardware schema), so a channel split
or a DSE knob that does not change the program reuses it, and an edit to any of those
sources invalidates it.
Runs are kept for the process and on disk (speccc/cachedir.py: calibration/ under
$SPECCC_CACHE, $XDG_CACHE_HOME/speccc or ~/.cache/speccc; SPECCC_NO_CACHE=1 turns the
disk part off), so a LLaMA decode step emulates a handful of distinct programs once per
machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from speccc.costmodel import OpCost, roofline_pim
from speccc.errors import CapacityError, SpecccError
from speccc.ir.opdefs import op_cost
from speccc.ir.types import dim_eval
from speccc.targets.npu.kernels import ACT_OPS

EXACT_REPS = 4
INF = float("inf")


@dataclass(frozen=True)
class PimRun:
    ns: float
    energy_pj: float
    bytes_internal: float
    bytes_external: float
    lane_macs: float
    exact: bool = True

    def __add__(self, o: "PimRun") -> "PimRun":
        return PimRun(self.ns + o.ns, self.energy_pj + o.energy_pj,
                      self.bytes_internal + o.bytes_internal,
                      self.bytes_external + o.bytes_external, self.lane_macs + o.lane_macs,
                      self.exact and o.exact)

    def scaled(self, k: float) -> "PimRun":
        return PimRun(self.ns * k, self.energy_pj * k, self.bytes_internal * k,
                      self.bytes_external * k, self.lane_macs * k, self.exact)


def gemv_program(hw, M: int, K: int, count: int, reps: int, tokens: int = 1):
    """`count` M x K matrices, each applied to `reps` groups of `tokens` input vectors
    (one row visit serves a group), spread over channel groups (matrix j in group j mod
    G at its own rows); one SYNC at the end."""
    from speccc.targets.pim.gemv import gemv_body
    from speccc.targets.pim.layout import plan_matrix
    from speccc.targets.pim.listing import Affine, Program, cmd, loop
    first = plan_matrix(hw, M, K)
    width = len(first.channels)
    groups = max(1, min(count, hw.pim.channels // width))
    body = []
    for g in range(groups):
        chans = tuple(range(g * width, (g + 1) * width))
        for i, _ in enumerate(range(g, count, groups)):
            pl = plan_matrix(hw, M, K, base=i * first.rows_used, channels=chans)
            inner = gemv_body(hw, pl, src=0, dst=Affine.of("r") * (pl.outputs * tokens),
                              sync=False, tokens=tokens, dst_step=pl.outputs)
            body.append(loop("r", reps, inner))
    body.append(cmd("SYNC"))
    t = f"t{tokens}" if tokens > 1 else ""
    return Program(tuple(body), hw.name, f"gemv{M}x{K}x{count}r{reps}{t}.pim")


def gemv_run(hw, M: int, K: int, count: int = 1, reps: int = 1, fast: bool = False) -> PimRun:
    """Emulated (or, beyond EXACT_REPS, extrapolated) cost of `gemv_program`. The
    program depends on (M, K) only through the placement's padded shape, so runs are
    cached by that: every KV length within one tile of the layout costs one emulation.
    fast: the closed form (closed_form.py) where its domain holds, else the emulator."""
    from speccc.targets.pim.layout import plan_matrix
    pl = plan_matrix(hw, M, K)
    T = max(1, min(reps, hw.pim.token_slots))          # tokens per row visit
    full, rest = divmod(reps, T)
    run = _gemv_run(hw, pl.Mp, pl.Kp, count, full, T, fast)
    return run + _gemv_run(hw, pl.Mp, pl.Kp, count, 1, rest, fast) if rest else run


def _gemv_run(hw, M: int, K: int, count: int, reps: int, tokens: int = 1,
              fast: bool = False) -> PimRun:
    if fast:
        from speccc.targets.pim.closed_form import closed_form_run
        key = ("closed-form", program_key(hw, M, K, count, reps, tokens))
        if key not in _MEMO:
            _MEMO[key] = closed_form_run(hw, M, K, count, reps, tokens)
        if _MEMO[key] is not None:
            return _MEMO[key]
    if reps > EXACT_REPS:
        a, b = (_gemv_run(hw, M, K, count, 2, tokens),
                _gemv_run(hw, M, K, count, EXACT_REPS, tokens))
        per = PimRun(*((y - x) / (EXACT_REPS - 2) for x, y in
                       zip(_fields(a), _fields(b))))
        out = b + per.scaled(reps - EXACT_REPS)
        return PimRun(*_fields(out), exact=False)
    key = program_key(hw, M, K, count, reps, tokens)
    run = _MEMO.get(key)
    if run is None:
        run = _MEMO[key] = _disk_get(key) or _disk_put(key, _emulate(hw, M, K, count, reps,
                                                                      tokens))
    return run


def _emulate(hw, M: int, K: int, count: int, reps: int, tokens: int) -> PimRun:
    from speccc.targets.pim.phase import time_phase
    res = time_phase(gemv_program(hw, M, K, count, reps, tokens), hw)
    return PimRun(res.ns, res.energy_total_pj, res.bytes_internal, res.bytes_external,
                  res.lane_macs)


# ---------------------------------------------------------- calibration cache --
_MEMO: dict[tuple, PimRun] = {}          # program_key -> run, for the process
_SOURCES: list[str] = []                  # digest of the emulator's source, once


def program_key(hw, M: int, K: int, count: int, reps: int, tokens: int) -> tuple:
    """Everything `gemv_program` + `time_phase` read: not the preset's name, not its
    NPU or link, and of the channel count only the channels the program spans (a
    placement `width` wide, `groups` such placements side by side)."""
    from speccc.targets.pim.layout import plan_matrix
    p = hw.pim
    width = len(plan_matrix(hw, M, K).channels)
    groups = max(1, min(count, p.channels // width))
    geometry = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)
                if f.name not in ("channels", "groups", "pu", "timing")}
    energy = {k: v for k, v in dataclasses.asdict(hw.energy).items() if not k.startswith("npu_")}
    return (tuple(sorted(geometry.items())), tuple(sorted(dataclasses.asdict(p.pu).items())),
            tuple(sorted(dataclasses.asdict(p.timing).items())), tuple(sorted(energy.items())),
            ("width", width), ("groups", groups), ("shape", M, K, count, reps, tokens))


# The source trees whose edit can change a calibrated number, as (package, glob): the
# emulator, codegen, timing tables and standards (targets/pim, this file included), and
# how a hardware description's fields are read, defaulted and derived (speccc/hw:
# config, schema, system). Preset TOML is not here: its values are in program_key.
# tests/pim/test_pim_calibration.py traces a calibration and checks every speccc source
# it runs is listed here or named there as not deciding a number.
DIGEST_SOURCES = [("speccc.targets.pim", "**/*.py"), ("speccc.targets.pim", "**/*.lark"),
                  ("speccc.hw", "*.py")]


def digest_files() -> list[Path]:
    import importlib
    files = set()
    for package, pattern in DIGEST_SOURCES:
        root = Path(importlib.import_module(package).__file__).resolve().parent
        files.update(f for f in root.glob(pattern) if "__pycache__" not in f.parts)
    return sorted(files)


def digest_of(files: list[Path]) -> str:
    """sha256 over each file's folder/name and its bytes."""
    h = hashlib.sha256()
    for f in files:
        h.update("/".join(f.parts[-2:]).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def source_digest() -> str:
    """The digest of `digest_files()`, computed once per process."""
    if not _SOURCES:
        _SOURCES.append(digest_of(digest_files()))
    return _SOURCES[0]


def _entry(key: tuple) -> tuple[Path, str]:
    from speccc.cachedir import cache_dir
    text = json.dumps([source_digest(), key])
    return cache_dir("calibration") / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json", text


def _disk_get(key: tuple) -> PimRun | None:
    from speccc.cachedir import read_entry
    path, text = _entry(key)
    data = read_entry(path)
    if data is None:
        return None
    try:
        got = json.loads(data)
        if got["key"] != text:            # a hash collision, or a hand-edited file
            return None
        fields = got["run"]               # JSON keeps each field's int/float type
        if len(fields) != 5 or not all(isinstance(x, (int, float)) for x in fields):
            return None
        return PimRun(*fields)
    except (ValueError, KeyError, TypeError):
        return None                       # torn or foreign file: a miss


def _disk_put(key: tuple, run: PimRun) -> PimRun:
    from speccc.cachedir import write_entry
    path, text = _entry(key)
    write_entry(path, json.dumps({"key": text, "run": list(_fields(run))}).encode())
    return run


def _fields(r: PimRun) -> tuple:
    return (r.ns, r.energy_pj, r.bytes_internal, r.bytes_external, r.lane_macs)


def host_side(hw, ops: float) -> PimRun:
    """Non-GEMV work of a PIM kernel, at AttAcc's one op per byte of external bandwidth."""
    return PimRun(ops / hw.derived()["peak_external_gbs"], ops * hw.energy.pu_op_pj, 0, 0, 0)


def bank_write(hw, nbytes: float) -> PimRun:
    """Moving nbytes between banks and the host side (WR or RD) at the external peak."""
    return PimRun(nbytes / hw.derived()["peak_external_gbs"],
                  nbytes * 8 * hw.energy.external_pj_per_bit, 0, nbytes, 0)


def _shape(t, b) -> tuple[int, ...]:
    out = tuple(dim_eval(d, b) for d in t.shape)
    if not all(isinstance(d, int) for d in out):
        raise SpecccError(f"PIM cost needs bound symbols: {t} (pass --bind)")
    return out


def _stored(v) -> bool:
    return v.op is not None and v.op.name == "weight" and v.type.rank == 2


def pim_run(hw, op, b, fast: bool = False) -> PimRun | None:
    """The calibrated run of `op`, or None when the op has no PIM kernel (roofline).
    fast: GEMVs in closed form where its domain holds (gemv_run)."""
    ts = [v.type for v in op.operands]
    if op.name in ("linear", "matmul", "gemm") and len(op.operands) >= 2 \
            and _stored(op.operands[1]) and ts[0].rank >= 1:
        if op.name == "gemm" and op.attrs.get("trans_a"):
            return None
        ws = _shape(ts[1], b)
        trans = op.attrs.get("transpose_w") or op.attrs.get("trans_b")
        k, n = (ws[1], ws[0]) if trans else ws
        rows = math.prod(_shape(ts[0], b)[:-1])
        run = gemv_run(hw, n, k, 1, rows, fast=fast)
        if len(op.operands) == 3:
            run = run + host_side(hw, rows * n)
        return run
    if op.name == "gated_mlp" and all(_stored(v) for v in op.operands[1:]):
        xs = _shape(ts[0], b)
        rows, k = math.prod(xs[:-1]), xs[-1]
        f, n = _shape(ts[-1], b)
        up = (gemv_run(hw, 2 * f, k, 1, rows, fast=fast) if len(ts) == 3
              else gemv_run(hw, f, k, 1, rows, fast=fast).scaled(2))
        act = ACT_OPS.get(op.attrs.get("activation", "silu"), 5) + 1   # + the multiply by up
        return up + host_side(hw, act * rows * f) + gemv_run(hw, n, f, 1, rows, fast=fast)
    if op.name == "attention":
        B, H, T, D = _shape(ts[0], b)
        _, KVH, S, Dv = _shape(ts[2], b)
        reps = T * (H // KVH)
        run = (gemv_run(hw, S, D, B * KVH, reps, fast=fast) + host_side(hw, 5 * B * H * T * S)
               + gemv_run(hw, Dv, S, B * KVH, reps, fast=fast)
               + bank_write(hw, B * KVH * T * (D + Dv) * 2))
        if len(ts) == 4:
            run = run + bank_write(hw, math.prod(_shape(ts[3], b)) * ts[3].dtype.itemsize_bits / 8)
        return run
    if op.name == "gather" and _stored(op.operands[0]):
        out = op.results[0].type   # embedding rows read out of the banks (RD)
        return bank_write(hw, math.prod(_shape(out, b)) * out.dtype.itemsize_bits / 8)
    return None


def pim_cost(hw, op, bindings, fast: bool = False) -> OpCost:
    """The PIM target's cost: the emulator-calibrated cost, else the roofline. fast:
    GEMVs in closed form where its domain holds (`--cost-model targets-fast`)."""
    b = dict(bindings)
    try:
        run = pim_run(hw, op, b, fast)
    except CapacityError:
        return OpCost(INF, INF, 0.0, 0.0, "capacity")   # does not fit in the banks
    if run is None:
        return roofline_pim(hw, op, b)
    flops = float(dim_eval(op_cost(op).flops, b))
    stream = run.bytes_internal / hw.derived()["peak_internal_gbs"]
    bound = "memory" if run.ns <= 1.25 * stream else "overhead"
    return OpCost(run.ns, run.energy_pj, run.bytes_internal + run.bytes_external, flops, bound)

