"""The design space: named dimensions, each a list of values, read from a TOML file.

    [space]
    gamma = {min = 1, max = 16}          # a range (step optional) ...
    schedule = ["none", "serial", "overlap"]   # ... or a list, or one value
    mapping = ["auto", "specpim", "attacc", "all-npu", "all-pim"]
    draft_channels = [0, 2, 4]
    batch = [1, 4]
    hw = ["aim-gddr6"]
    [space.knobs]                        # hardware description keys, section.key
    "npu.pes" = [2, 4, 8]
    [workload]                           # optional; command-line options win
    acceptance = 0.8
    prompt_len = 8
    max_new_tokens = 128

A point is one value per dimension; its id is its index in the grid, read as a
mixed-radix number with the first dimension slowest (hardware first, γ last), so
consecutive ids share hardware, mapping and batch, hence cost tables. A new dimension is
one row of DIMS (or one more knob): ids are stable for a given space file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from speccc.errors import SpecccError
from speccc.textio import load_toml

SCHEDULES = ("none", "serial", "overlap", "pipeinfer")
# `auto`: per op and (T, P) the faster device (what `speccc run --placement auto` does);
# `mincut`: the partition pass's exact solver; it and `specpim` are solved per (batch, γ)
# (mapping.py); the rest are the partition pass's fixed published mappings.
# `all-gpu`: every op on a system's GPU (speccc.hw.system; `speccc baseline`).
MAPPINGS = ("auto", "mincut", "specpim", "attacc", "all-npu", "all-pim", "all-gpu")
GAMMA_MAX = 16


def _int_in(lo, hi=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi and v > hi):
            return f"expected an integer in [{lo}, {hi or 'inf'}]"
    return check


def _one_of(names):
    def check(v):
        if v not in names:
            return f"expected one of {', '.join(names)}"
    return check


def _str(v):
    if not isinstance(v, str) or not v:
        return "expected a preset name or .toml path"


# (name, check, default values). Order = radix order: first is slowest.
DIMS = [
    ("hw", _str, None),                     # default: --hw
    ("batch", _int_in(1), [1]),
    ("mapping", _one_of(MAPPINGS), ["auto", "specpim", "attacc", "all-npu", "all-pim"]),
    ("draft_channels", _int_in(0), [0]),    # 0: shared (serial) / auto split (overlap...)
    ("schedule", _one_of(SCHEDULES), ["none", "serial", "overlap"]),
    ("gamma", _int_in(1, GAMMA_MAX), list(range(1, GAMMA_MAX + 1))),
]
WORKLOAD = {"acceptance": None, "prompt_len": 8, "max_new_tokens": 128}
_KNOB_AFTER = 1   # knob dimensions go right after `hw` (they change the hardware)


@dataclass(frozen=True)
class Space:
    dims: tuple          # ((name, (values...)), ...), radix order
    workload: dict = field(default_factory=dict, compare=False)
    source: str = field(default="", compare=False)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.dims]

    @property
    def knobs(self) -> list[str]:
        return [n for n, _ in self.dims if "." in n]

    @property
    def size(self) -> int:
        return math.prod(len(v) for _, v in self.dims)

    def values(self, name: str) -> tuple:
        return dict(self.dims)[name]

    def point(self, pid: int) -> dict:
        """The point with id `pid` (mixed radix, last dimension fastest)."""
        if not 0 <= pid < self.size:
            raise SpecccError(f"point id {pid} outside the space of {self.size} points")
        out = {}
        for name, vals in reversed(self.dims):
            pid, i = divmod(pid, len(vals))
            out[name] = vals[i]
        return {n: out[n] for n in self.names}

    def index(self, point: dict) -> int:
        pid = 0
        for name, vals in self.dims:
            pid = pid * len(vals) + vals.index(point[name])
        return pid

    def digits(self, pid: int) -> list[int]:
        """Per-dimension value index of a point (the genetic search's genome)."""
        out = []
        for _, vals in reversed(self.dims):
            pid, i = divmod(pid, len(vals))
            out.append(i)
        return out[::-1]

    def from_digits(self, digits) -> int:
        pid = 0
        for (_, vals), d in zip(self.dims, digits):
            pid = pid * len(vals) + int(d)
        return pid


def load_space(path: str | None, hw: str, overrides: dict | None = None) -> Space:
    """Read a space file (None: the default space on `hw`); `overrides` (command-line
    values, e.g. batch) replace dimensions. Errors name the file and the key."""
    raw, label = {}, "default space"
    if path is not None:
        label = Path(path).name
        raw = load_toml(path, "space")
    _known(raw, {"space", "workload"}, label, "")
    table = raw.get("space", {})
    _known(table, {n for n, _, _ in DIMS} | {"knobs"}, label, "[space] ")
    dims = []
    for name, check, default in DIMS:
        where = f"{label}: [space] {name}"
        if overrides and overrides.get(name):
            vals = _validate(list(overrides[name]), check, where)
        elif name in table:
            vals = _values(table[name], check, where)
        else:
            vals = [hw] if name == "hw" else default
        dims.append((name, tuple(dict.fromkeys(vals))))
    knobs = table.get("knobs", {})
    for key in knobs:
        vals = _values(knobs[key], _knob_value, f"{label}: [space.knobs] {key}")
        _knob_key(key, f"{label}: [space.knobs] {key}")
        dims.insert(_KNOB_AFTER, (key, tuple(dict.fromkeys(vals))))
    work = raw.get("workload", {})
    _known(work, set(WORKLOAD), label, "[workload] ")
    return Space(tuple(dims), {**WORKLOAD, **work}, source=label)


def _known(table, known: set, label: str, prefix: str) -> None:
    if not isinstance(table, dict):
        raise SpecccError(f"{label}: {prefix.strip() or 'file'}: expected a table")
    for key in table:
        if key not in known:
            raise SpecccError(f"{label}: {prefix}{key}: unknown key (known: "
                              f"{', '.join(sorted(known))})")


def _values(v, check, where: str) -> list:
    """A list, a {min, max[, step]} range, or one value."""
    if isinstance(v, dict):
        extra = set(v) - {"min", "max", "step"}
        if extra or not {"min", "max"} <= set(v):
            raise SpecccError(f"{where}: a range is {{min = A, max = B[, step = S]}}, got "
                              f"keys {', '.join(sorted(v))}")
        lo, hi, step = v["min"], v["max"], v.get("step", 1)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (lo, hi, step)):
            raise SpecccError(f"{where}: range bounds and step must be integers")
        if lo > hi:
            raise SpecccError(f"{where}: inverted range (min {lo} > max {hi})")
        if step < 1:
            raise SpecccError(f"{where}: step must be >= 1, got {step}")
        v = list(range(lo, hi + 1, step))
    elif not isinstance(v, list):
        v = [v]
    return _validate(v, check, where)


def _validate(vals: list, check, where: str) -> list:
    if not vals:
        raise SpecccError(f"{where}: empty (give at least one value)")
    for x in vals:
        msg = check(x)
        if msg:
            raise SpecccError(f"{where}: {msg}, got {x!r}")
    return vals


def _knob_value(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return "expected numbers or strings"


def _knob_key(key: str, where: str) -> None:
    """A knob names a key of the hardware schema (speccc/hw/config.py SECTIONS)."""
    from speccc.hw.schema import SECTIONS
    section, _, name = key.rpartition(".")
    if section not in SECTIONS or name not in {k for k, _, _ in SECTIONS[section]}:
        raise SpecccError(f"{where}: not a hardware key (section.key, e.g. npu.pes, "
                          "pim.pu.acc_regs; see `speccc hw show PRESET`)")
