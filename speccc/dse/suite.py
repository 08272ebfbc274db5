"""`speccc dse --suite`: the model-pair suite (suite.toml) swept pair by pair, and the
geomean table SpecPIM reports (suite_report.py writes it).

    suite = load_suite()                       # speccc/dse/suite.toml, validated
    summary = run_suite(suite, "out/", executor="local", jobs=2)
    # out/<draft>--<target>/ holds each pair's `speccc dse` outputs;
    # out/suite.md and out/suite.json the table

Each pair runs on the suite's hardware preset scaled to the fewest stacks that hold both
models and their KV cache (`stacks_for`), over the suite's small space with draft
channels {shared, proportional split}. A pair with no feasible point is reported with
the reason, never dropped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from speccc.dse.space import DIMS, Space, _values
from speccc.errors import SpecccError
from speccc.textio import load_toml

PAIR_KEYS = {"draft": str, "target": str, "acceptance": (float, int, list),
             "acceptance_kind": str, "source": str, "basis": str, "stacks": int}
PAIR_REQUIRED = ("draft", "target", "acceptance", "acceptance_kind", "source")
ACCEPTANCE_KINDS = ("published", "estimate")
HARDWARE_KEYS = {"preset": str, "per_stack_channels": int,
                 "per_stack_ext_bandwidth_gbs": (float, int)}
SPACE_KEYS = ("gamma", "schedule", "mapping", "batch")
WORKLOAD_KEYS = {"prompt_len": int, "max_new_tokens": int}
BYTES_PER_WORD = 2          # the zoo's real-size presets are fp16


@dataclass(frozen=True)
class Pair:
    draft: str
    target: str
    alphas: tuple
    acceptance_kind: str
    source: str
    basis: str = ""
    stacks: int | None = None    # None: the fewest that fit (stacks_for)

    @property
    def slug(self) -> str:
        return f"{self.draft}--{self.target}"


@dataclass(frozen=True)
class Suite:
    source: str
    preset: str
    per_stack_channels: int
    per_stack_ext_bandwidth_gbs: float
    space: dict          # dimension name -> list of values (gamma, schedule, mapping, batch)
    prompt_len: int
    max_new_tokens: int
    pairs: tuple


def default_path() -> str:
    return str(resources.files("speccc.dse") / "suite.toml")


def load_suite(path: str | None = None) -> Suite:
    """Read and validate a suite file; errors name the file, the pair and the key."""
    path = path or default_path()
    label = Path(path).name
    raw = load_toml(path, "suite")
    _keys(raw, {"hardware": dict, "space": dict, "workload": dict, "pair": list}, label, "")
    hw = raw.get("hardware", {})
    _keys(hw, HARDWARE_KEYS, label, "[hardware] ", required=tuple(HARDWARE_KEYS))
    from speccc.hw.config import load_hw
    try:
        load_hw(hw["preset"])
    except SpecccError as err:
        raise SpecccError(f"{label}: [hardware] preset: {err}") from None
    for k in ("per_stack_channels", "per_stack_ext_bandwidth_gbs"):
        if not hw[k] > 0:
            raise SpecccError(f"{label}: [hardware] {k}: must be > 0, got {hw[k]!r}")
    checks = {name: check for name, check, _ in DIMS}
    table = raw.get("space", {})
    _keys(table, dict.fromkeys(SPACE_KEYS, object), label, "[space] ",
          required=SPACE_KEYS)
    space = {k: list(dict.fromkeys(_values(table[k], checks[k], f"{label}: [space] {k}")))
             for k in SPACE_KEYS}
    work = raw.get("workload", {})
    _keys(work, WORKLOAD_KEYS, label, "[workload] ", required=tuple(WORKLOAD_KEYS))
    for k, v in work.items():
        if v < 1:
            raise SpecccError(f"{label}: [workload] {k}: must be >= 1, got {v}")
    pairs = [_pair(p, i, label) for i, p in enumerate(raw.get("pair", []))]
    if not pairs:
        raise SpecccError(f"{label}: no [[pair]] entries")
    seen = set()
    for p in pairs:
        if p.slug in seen:
            raise SpecccError(f"{label}: pair {p.draft} -> {p.target} listed twice")
        seen.add(p.slug)
    return Suite(str(path), hw["preset"], hw["per_stack_channels"],
                 float(hw["per_stack_ext_bandwidth_gbs"]), space, work["prompt_len"],
                 work["max_new_tokens"], tuple(pairs))


def _keys(table, known: dict, label: str, prefix: str, required=()) -> None:
    if not isinstance(table, dict):
        raise SpecccError(f"{label}: {prefix.strip() or 'file'}: expected a table")
    for key, value in table.items():
        if key not in known:
            raise SpecccError(f"{label}: {prefix}{key}: unknown key (known: "
                              f"{', '.join(sorted(known))})")
        if known[key] is not object and (isinstance(value, bool)
                                         or not isinstance(value, known[key])):
            raise SpecccError(f"{label}: {prefix}{key}: wrong type "
                              f"({type(value).__name__})")
    for key in required:
        if key not in table:
            raise SpecccError(f"{label}: {prefix}{key}: missing")


def _pair(raw, i: int, label: str) -> Pair:
    where = f"[[pair]] {i + 1}" + (f" ({raw.get('draft')} -> {raw.get('target')})"
                                   if isinstance(raw, dict) else "")
    _keys(raw, PAIR_KEYS, label, where + " ", required=PAIR_REQUIRED)
    from speccc.zoo.presets import PRESETS
    for role in ("draft", "target"):
        if raw[role] not in PRESETS or PRESETS[raw[role]].weights:
            raise SpecccError(f"{label}: {where} {role}: {raw[role]!r} is not a real-size "
                              "zoo preset (speccc zoo --list)")
    if raw["acceptance_kind"] not in ACCEPTANCE_KINDS:
        raise SpecccError(f"{label}: {where} acceptance_kind: expected one of "
                          f"{', '.join(ACCEPTANCE_KINDS)}, got {raw['acceptance_kind']!r}")
    if raw["acceptance_kind"] == "estimate" and not raw.get("basis"):
        raise SpecccError(f"{label}: {where} basis: an estimate says how it was chosen")
    acc = raw["acceptance"] if isinstance(raw["acceptance"], list) else [raw["acceptance"]]
    if not acc or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                          and 0 <= a < 1 for a in acc):
        raise SpecccError(f"{label}: {where} acceptance: rates in [0, 1), got "
                          f"{raw['acceptance']!r}")
    if "stacks" in raw and raw["stacks"] < 1:
        raise SpecccError(f"{label}: {where} stacks: must be >= 1, got {raw['stacks']}")
    return Pair(raw["draft"], raw["target"], tuple(float(a) for a in acc),
                raw["acceptance_kind"], raw["source"], raw.get("basis", ""),
                raw.get("stacks"))


def model_bytes(name: str, context: int, batch: int) -> int:
    """fp16 weights plus the KV cache of `batch` requests of `context` positions."""
    from speccc.zoo.presets import get_spec
    s = get_spec(name)
    kv = 2 * s.layers * s.kv_heads * s.head_dim * context * batch
    return (s.param_count() + kv) * BYTES_PER_WORD


def stacks_for(pair: Pair, suite: Suite) -> int:
    if pair.stacks is not None:
        return pair.stacks
    from speccc.hw.config import load_hw
    hw = load_hw(suite.preset)
    stack = hw.derived()["capacity_bytes"] / hw.pim.channels * suite.per_stack_channels
    ctx, batch = suite.prompt_len + suite.max_new_tokens, max(suite.space["batch"])
    need = sum(model_bytes(m, ctx, batch) for m in (pair.draft, pair.target))
    return max(1, math.ceil(need / stack))


def draft_split(pair: Pair, suite: Suite, channels: int) -> int:
    """SpecPIM's disjoint split: the draft's channels in proportion to the weights, but
    at least as many as hold the draft and its KV cache (and at least 1)."""
    from speccc.hw.config import load_hw
    from speccc.zoo.presets import get_spec
    hw = load_hw(suite.preset)
    per_channel = hw.derived()["capacity_bytes"] / hw.pim.channels
    ctx, batch = suite.prompt_len + suite.max_new_tokens, max(suite.space["batch"])
    wd, wt = (get_spec(m).param_count() for m in (pair.draft, pair.target))
    holds = math.ceil(model_bytes(pair.draft, ctx, batch) / per_channel)
    return max(1, min(channels - 1, max(holds, round(channels * wd / (wd + wt)))))


def pair_study(pair: Pair, suite: Suite, seed: int = 0, cost_model: str = "roofline"):
    from speccc.dse.driver import hw_texts
    from speccc.dse.evaluate import Study
    stacks = stacks_for(pair, suite)
    channels = stacks * suite.per_stack_channels
    knobs = {"npu.ext_bandwidth_gbs": suite.per_stack_ext_bandwidth_gbs * stacks,
             "pim.channels": channels}
    values = {"hw": [suite.preset], **{k: [v] for k, v in knobs.items()},
              "draft_channels": [0, draft_split(pair, suite, channels)], **suite.space}
    dims = [(name, tuple(values[name])) for name, _, _ in DIMS]
    for k in reversed(list(knobs)):        # knob dimensions go right after `hw`
        dims.insert(1, (k, tuple(values[k])))
    space = Space(tuple(dims), {}, source=f"{Path(suite.source).name} {pair.slug}")
    study = Study(pair.target, pair.draft, space, pair.alphas, None, suite.prompt_len,
                  suite.max_new_tokens, seed, cost_model, hw_texts(space))
    return study, stacks


def run_suite(suite: Suite, out_dir, *, executor: str = "local", jobs: int = 1,
              address=None, chunk: int = 256, seed: int = 0, cost_model: str = "roofline",
              only: list | None = None, progress=None) -> dict:
    """Sweep every pair into OUT/<slug>/ and write OUT/suite.md and OUT/suite.json."""
    from speccc.dse import driver
    from speccc.dse.suite_report import pair_result, write_suite
    out = Path(out_dir)
    pairs = [p for p in suite.pairs if not only or p.slug in only]
    if not pairs:
        raise SpecccError(f"no suite pair matches {', '.join(only or [])} (pairs: "
                          f"{', '.join(p.slug for p in suite.pairs)})")
    results, t0 = [], time.perf_counter()
    for pair in pairs:
        study, stacks = pair_study(pair, suite, seed, cost_model)
        t = time.perf_counter()
        note = ""
        from speccc.dse.sweep import PointStore
        before = len(PointStore(out / pair.slug, study).rows)
        try:
            driver.run(study, out / pair.slug, "grid", "latency", executor, jobs, address,
                       chunk, {}, 0, 0)
        except SpecccError as err:     # no feasible point: reported, not dropped
            note = str(err)
        rows = list(PointStore(out / pair.slug, study).rows.values())
        results.append(pair_result(pair, study, stacks, rows, note,
                                   time.perf_counter() - t))
        results[-1]["evaluated"] = len(rows) - before
        if progress:
            progress(pair, results[-1])
    return write_suite(out, suite, results, time.perf_counter() - t0)


__all__ = ["Pair", "Suite", "load_suite", "run_suite", "pair_study", "stacks_for",
           "draft_split", "default_path"]
