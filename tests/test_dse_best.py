"""best.toml's [dse] table: load_hw accepts it apart from the hardware, and
`speccc run --hw best.toml` takes the chosen point as defaults."""
from __future__ import annotations

import json

import pytest

from speccc.errors import SpecccError
from speccc.hw.config import load_hw
from cli_helpers import invoke as run

SPACE = """
[space]
gamma = [2, 3]
schedule = ["serial"]
mapping = ["specpim"]
draft_channels = [2]
batch = [1, 2]
hw = ["hbm3-pim-x8"]
"""


@pytest.fixture(scope="module")
def best(tmp_path_factory):
    d = tmp_path_factory.mktemp("dse")
    (d / "s.toml").write_text(SPACE)
    r = run("dse", "--target", "llama2-7b", "--draft", "llama-68m", "--acceptance", "0.8",
            "--space", d / "s.toml", "--max-new-tokens", "16", "--confirm", "0",
            "--confirm-random", "0", "-o", d / "out", "--json")
    assert r.exit_code == 0, r.output
    return d / "out" / "best.toml", json.loads(r.output)["best"]


def test_best_toml_records_the_point(best):
    path, b = best
    hw = load_hw(path)
    assert hw == load_hw("hbm3-pim-x8")            # the hardware is the preset's
    assert hw.dse == {"schedule": b["schedule"], "gamma": b["gamma"],
                      "mapping": "specpim", "draft_channels": 2, "batch": b["batch"],
                      "partition_p": 8 + 16 // 2,
                      # the channels and prices the solved mapping was chosen on
                      "channels": "draft=0-1,target=2-15", "cost_model": "roofline"}


def test_run_takes_the_point_as_defaults(best):
    path, b = best
    common = ["--target", "llama2-7b", "--draft", "llama-68m", "--acceptance", "0.8",
              "--max-new-tokens", "16", "--cost-model", "roofline", "--json"]
    by_file = json.loads(run("run", "--hw", path, *common).output)
    # specpim is solved per (batch, γ): the target at its verify shape, the draft at 1
    shape = f"P=16,batch={b['batch']}" if b["batch"] != 1 else "P=16"
    passes = (f"partition{{mapping=specpim,hw=hbm3-pim-x8,bind=T={b['gamma'] + 1}:{shape},"
              "graphs=target,channels=2-15,cost-model=roofline},"
              f"partition{{mapping=specpim,hw=hbm3-pim-x8,bind=T=1:{shape},graphs=draft,"
              "channels=0-1,cost-model=roofline}")
    explicit = run("run", "--hw", "hbm3-pim-x8", "--schedule", "serial", "--gamma",
                   b["gamma"], "--batch", b["batch"], "--draft-channels", "2", "--passes",
                   passes, *common)
    explicit = json.loads(explicit.output)
    assert by_file["gamma"] == b["gamma"] and by_file["schedule"] == "serial"
    for k in ("tokens_per_s", "itl_ms", "energy_per_token_mj"):
        assert by_file[k] == pytest.approx(explicit[k], rel=1e-12), k
    # what the command line gives wins
    other = 5 if b["gamma"] != 5 else 4
    over = json.loads(run("run", "--hw", path, "--gamma", other, *common).output)
    assert over["gamma"] == other


@pytest.mark.parametrize("table,needle", [
    ("[dse]\nschedule = 'serial'\n", "[dse] gamma: missing"),
    ("[dse]\nschedule = 'fast'\ngamma = 2\nmapping = 'auto'\ndraft_channels = 0\n"
     "batch = 1\npartition_p = 8\n", "[dse] schedule"),
    ("[dse]\nschedule = 'serial'\ngamma = 0\nmapping = 'auto'\ndraft_channels = 0\n"
     "batch = 1\npartition_p = 8\n", "[dse] gamma"),
    ("[dse]\nschedule = 'serial'\ngamma = 2\nmapping = 'auto'\ndraft_channels = 0\n"
     "batch = 1\npartition_p = 8\ncolour = 1\n", "[dse] colour: unknown key"),
])
def test_bad_dse_table(tmp_path, best, table, needle):
    path, _ = best
    text = path.read_text()
    f = tmp_path / "b.toml"
    f.write_text(text[:text.index("[dse]")] + table)
    with pytest.raises(SpecccError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_hw(f)


def test_shared_channels_point_loads(tmp_path, best):
    path, _ = best
    text = path.read_text()
    f = tmp_path / "b.toml"
    f.write_text(text[:text.index("[dse]")] + "[dse]\nschedule = 'none'\ngamma = 1\n"
                 "mapping = 'auto'\ndraft_channels = 0\nbatch = 4\npartition_p = 72\n")
    assert load_hw(f).dse["draft_channels"] == 0 and load_hw(f).dse["batch"] == 4
