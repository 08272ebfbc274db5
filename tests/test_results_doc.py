"""benchmarks/results_doc.py renders docs/results.md from the sweeps' numbers: the GPU
column is a TODO until a baseline gives it, then a per-pair ratio and a geomean, and the γ sweep says where
speculation stops paying from the ratios it is given."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
results_doc = pytest.importorskip("results_doc")

from speccc.dse.suite import load_suite  # noqa: E402


def _summary(itl=0.5, energy=20.0):
    best = {"schedule": "serial", "gamma": 4, "mapping": "auto", "draft_channels": 0,
            "itl_ms": itl, "energy_per_token_mj": energy}
    pair = {"draft": "llama-68m", "target": "llama2-7b", "slug": "llama-68m--llama2-7b",
            "acceptance": [0.6], "acceptance_kind": "estimate", "source": "s",
            "basis": "b", "stacks": 1, "status": "ok", "best": best, "points": 10,
            "evaluated": 10, "speedup": {"target_only": 2.0, "specpim": 1.5,
                                         "mapping:attacc": 8.0, "mapping:all-npu": 9.0},
            "energy_efficiency": {"target_only": 1.5, "specpim": 1.0,
                                  "mapping:attacc": 4.0}}
    bad = {**pair, "target": "llama2-13b", "slug": "x", "status": "does not fit",
           "note": "@target does not fit", "evaluated": 0}
    keys = ("target_only", "specpim", "mapping:attacc", "mapping:all-npu")
    return {"hardware": "hbm3-pim-x8", "space": {"gamma": [4]}, "prompt_len": 8,
            "max_new_tokens": 16, "pairs": [pair, bad], "geomean_over": [pair["slug"]],
            "geomean": {"speedup": {k: pair["speedup"][k] for k in keys},
                        "energy_efficiency": {k: pair["energy_efficiency"].get(k)
                                              for k in keys}},
            "overlap_vs_specpim": None, "cost_tables_computed": 3}


def _sweep():
    pair = load_suite().pairs[0]
    return {"pair": pair, "stacks": 1, "points": 6, "evaluated": 6,
            "target_only_tokens_per_s": {1: 100.0, 16: 900.0},
            "speedup": {1: {1: 1.2, 2: 1.1, 3: 0.9}, 16: {1: 0.8, 2: 0.7, 3: 0.6}}}


def _render(columns):
    return results_doc.render(_summary(), _sweep(), columns, [("p", "1×", "1×")] * 5, 60,
                              types.SimpleNamespace(jobs=1))


def test_gpu_column_todo_then_filled():
    text = _render([("GPU", "gpu", None)])
    assert "**TODO: GPU column**" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| llama-68m → llama2-7b"))
    assert row.endswith("| TODO |")
    assert "does not fit**: @target does not fit" in text
    text = _render([("GPU", "gpu", {"llama-68m--llama2-7b": (1.5, 50.0)})])
    assert "TODO: GPU column" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| llama-68m → llama2-7b"))
    assert row.endswith("| 3.00× / 2.50× |")       # 1.5 / 0.5 ms, 50 / 20 mJ
    geo = next(ln for ln in text.splitlines() if ln.startswith("| **geomean**"))
    assert geo.endswith("| **3.00× / 2.50×** |")    # one pair with both numbers
    assert "ours is 3.00× / 2.50× over 1 pairs, above SpecPIM's speedup and below" in text


def test_sweep_says_where_speculation_stops_paying():
    text = _render([])
    assert "| 1 | 1.20 | 1.10 | 0.90 | 1 (1.20×) | 2 |" in text
    assert "| 16 | 0.80 | 0.70 | 0.60 | 1 (0.80×) | never |" in text
    assert "Batch 1: pays up to γ 2, loses beyond (γ 3: 0.90×)" in text
    assert "Batch 16: speculation never pays (best 0.80×)" in text
    # 6 sweep points + 10 + 10 suite points, of which the second pair's were resumed
    assert "evaluated 16 of 26 points, the rest resumed from `--work`" in text
    assert "computing 3 cost tables not cached on disk" in text
