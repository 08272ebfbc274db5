"""`speccc run` refuses, like `compile`, models that do not fit the preset's memory."""
from __future__ import annotations

import pytest
from cli_helpers import assert_error
from cli_helpers import invoke as cli

from speccc import zoo
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.hw import load_hw
from speccc.passmanager import PassManager
from speccc.runtime.capacity import check_fits, model_bytes
from speccc.runtime.program import Program


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    for name in ("llama2-7b", "llama-68m"):
        zoo.save(zoo.build(name, mode="decode", weights=False, dtype="float16"),
                 d / f"{name}.onnx")
    return d


def test_run_refuses_7b_on_a_4_gib_preset(big):
    args = ["run", "--target", big / "llama2-7b.onnx", "--draft", big / "llama-68m.onnx",
            "--acceptance", 0.8, "--max-new-tokens", 4, "--cost-model", "roofline"]
    assert_error(cli(*args, "--hw", "hbm-pim"), "does not fit hbm-pim", "GiB weights",
                 "hold 4.00 GiB")
    ok = cli(*args, "--hw", "aim-gddr6", "--json")
    assert ok.exit_code == 0, ok.output


def test_each_model_must_fit_its_own_channels(big):
    m = import_model(big / "llama2-7b.onnx", ImportOptions(graph_name="target",
                                                           shapes_only=True))
    import_model(big / "llama-68m.onnx", ImportOptions(graph_name="draft", shapes_only=True),
                 module=m)
    w, kv = model_bytes(m.graphs["target"], context=1, batch=1)
    assert 12.4 * 2**30 < w < 12.8 * 2**30 and kv == 32 * 2 * 4096 * 2   # fp16 words
    hw = load_hw("aim-gddr6")   # 16 GiB over 32 channels
    PassManager.parse("speculate{schedule=serial,hw=aim-gddr6,draft_channels=8}").run(m)
    with pytest.raises(Exception, match="24 of 32 PIM channels hold 12.00 GiB"):
        check_fits(m, Program.from_graph(m.graphs["schedule"]), hw, 256, 1)
    PassManager.parse("speculate{schedule=serial,hw=aim-gddr6,draft_channels=2}").run(m)
    check_fits(m, Program.from_graph(m.graphs["schedule"]), hw, 256, 1)
    with pytest.raises(Exception, match=r"4096 positions x 16 request"):
        check_fits(m, Program.from_graph(m.graphs["schedule"]), hw, 4096, 16)
