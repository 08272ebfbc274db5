"""The target interface (speccc.targets): built-in targets implement it, a third target
plugs in with one registration line, lowering passes replace ops with kernel ops whose
listings travel with the module, and `compile --print-pipeline` is what compile runs."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from speccc import zoo
from speccc.cli import main
from speccc.costmodel import CostModel
from speccc.frontend.onnx_import import import_model
from speccc.hw import load_hw
from speccc.ir.interpreter import Plan
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.passmanager import PassManager
from speccc.targets import Target, target, targets, unregister


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.exception)
    return r


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


@pytest.fixture
def gpu():
    sys.modules.pop("gpu_target", None)
    import gpu_target  # noqa: F401  (importing it registers the target: its one line)
    yield target("toygpu")
    unregister("toygpu")


def test_builtin_targets_implement_the_interface():
    assert list(targets()) == ["npu", "pim", "host", "gpu"]
    for t in targets().values():
        assert isinstance(t, Target), t.name
    assert target("pim").kernel_op == "pim.kernel" and target("npu").kernel_op == "npu.kernel"


def test_a_third_target_is_usable_by_cost_and_partition(gpu, tiny):
    hw = load_hw("hbm-pim")
    m = import_model(tiny)
    PassManager.parse("fold{bind=T=1:P=16},canonicalize,fold,dce,fuse,dce,"
                      "cost{devices=npu:pim:toygpu},partition{devices=npu:toygpu}").run(m)
    g = m.graphs["target"]
    assert g.attrs["cost_devices"] == ["npu", "pim", "toygpu"]
    ops = [op for op in g.ops() if "device" in op.attrs]
    assert {op.attrs["device"] for op in ops} <= {"npu", "toygpu"}
    assert all(len(op.attrs["cost_ns"]) == 3 for op in ops)
    info = dict(g.attrs["partition"])
    assert info["devices"] == "npu:toygpu"
    assert info["latency_ns"] <= min(info["all_npu_ns"], info["all_toygpu_ns"]) * (1 + 1e-9)
    linear = next(op for op in ops if op.name == "linear")
    assert CostModel(hw).op_cost(linear, "toygpu", {"T": 1, "P": 16}).latency_ns >= 4000.0
    # the report of a partition between two targets names them
    from speccc.passes.partition import partition_report
    assert {"npu_ns", "toygpu_ns"} <= set(partition_report(g)["ops"][-1])


def test_partition_without_costs_for_a_device_says_so(tiny):
    m = import_model(tiny)
    from speccc.errors import SpecccError
    with pytest.raises(SpecccError, match="unknown target 'tpu'"):
        PassManager.parse("fold{bind=T=1:P=16},canonicalize,fold,dce,fuse,dce,"
                          "partition{devices=npu:tpu}").run(m)


def test_print_pipeline_given_to_opt_makes_the_same_kernel_ops(tiny, tmp_path):
    args = [tiny, "--bind", "T=1,P=16", "--hw", "aim-gddr6", "--partition", "mincut"]
    pipeline = run("compile", *args, "--print-pipeline").output.strip()
    assert pipeline.endswith("lower-pim{hw=aim-gddr6,bind=P=16:T=1},"
                             "lower-npu{hw=aim-gddr6,bind=P=16:T=1}")
    run("compile", *args, "-o", tmp_path / "out")
    run("opt", tiny, "-p", pipeline, "-o", tmp_path / "opt.ir")
    compiled = (tmp_path / "out" / "ir" / "target.ir").read_text()
    opted = (tmp_path / "opt.ir").read_text()
    kernels = [line for line in compiled.splitlines() if ".kernel(" in line]
    assert kernels and kernels == [line for line in opted.splitlines() if ".kernel(" in line]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert ",".join(report["pipeline"] + report["lowering"]) == pipeline


def test_lowered_module_keeps_semantics_and_listings(tiny):
    m = import_model(tiny)
    PassManager.parse("fold{bind=T=1:P=16},canonicalize,fold,dce,fuse,dce,"
                      "place{hw=hbm-pim,bind=P=16:T=1}").run(m)
    from speccc.frontend.onnx_import import sanitize_name
    feeds = {sanitize_name(k): v for k, v in
             zoo.example_inputs("llama-tiny", mode="decode", T=1, P=16).items()}
    g = m.graphs["target"]
    before = Plan(g).run(feeds, {})
    PassManager.parse("lower-pim{bind=P=16:T=1},lower-npu{bind=P=16:T=1}").run(m)
    kernels = [op for op in g.ops() if op.name.endswith(".kernel")]
    assert kernels
    for op in kernels:
        assert all(key in m.listings for key in op.attrs["listings"])
    # text round trip: parse(print) is the same module (listings stay out of line)
    assert print_module(parse_module(print_module(m))) == print_module(m)
    after = Plan(g).run(feeds, {})       # kernel ops keep the lowered ops' semantics
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
