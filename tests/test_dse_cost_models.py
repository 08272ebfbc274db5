"""`--cost-model targets-fast` (PIM GEMVs in closed form, targets/pim/closed_form.py) in
`speccc dse` and `speccc baseline`: accepted, recorded in best.toml and the solved
mappings' pricing, and within 5% of the emulator-priced `targets`. (docs/dse.md)"""
from __future__ import annotations

import csv
import json

import pytest

from cli_helpers import invoke
from speccc.hw import load_hw

SPACE = """
[space]
hw = ["hbm3-pim"]
mapping = ["specpim", "attacc"]
schedule = ["none", "serial"]
gamma = [2]
"""
PAIR = ["--target", "llama-68m", "--draft", "llama-68m", "--acceptance", "0.8",
        "--max-new-tokens", "16"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    d = tmp_path_factory.mktemp("cm")
    (d / "s.toml").write_text(SPACE)
    out = {}
    for cm in ("targets-fast", "targets"):
        r = invoke("dse", *PAIR, "--space", d / "s.toml", "--confirm", 0,
                   "--confirm-random", 0, "--cost-model", cm, "-o", d / cm)
        assert r.exit_code == 0, (r.output, r.exception)
        out[cm] = d / cm
    return out


def test_dse_targets_fast_is_within_5_percent_of_targets(sweeps):
    rows = {cm: list(csv.DictReader(open(d / "points.csv"))) for cm, d in sweeps.items()}
    assert len(rows["targets-fast"]) == len(rows["targets"]) == 4
    for fast, slow in zip(rows["targets-fast"], rows["targets"]):
        assert fast["feasible"] == slow["feasible"] == "1"
        for k in ("itl_ms", "energy_per_token_mj"):
            assert float(fast[k]) == pytest.approx(float(slow[k]), rel=0.05), (k, fast)


def test_best_toml_records_targets_fast(sweeps):
    hw = load_hw(sweeps["targets-fast"] / "best.toml")
    assert hw.dse["cost_model"] == "targets-fast"


def test_baseline_takes_targets_fast():
    r = invoke("baseline", "--target", "llama-68m", "--draft", "llama-68m", "--system",
               "hbm3-pim", "--cost-model", "targets-fast", "--no-best",
               "--max-new-tokens", "16", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    data = json.loads(r.output)
    rows = data["rows"] if isinstance(data, dict) else data
    assert rows and all(row["feasible"] for row in rows)


def test_unknown_cost_model_is_a_usage_error():
    r = invoke("dse", *PAIR, "--cost-model", "fastest", "-o", "never")
    assert r.exit_code == 2 and "fastest" in r.output
