"""The CLI's happy paths: help, zoo, ops, exec, compile (deterministic), opt options."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from speccc import zoo
from speccc.cli import main


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.stderr, r.exception)
    return r


@pytest.fixture(scope="module")
def decode_model(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "llama.onnx"
    run("zoo", "llama-tiny", "--mode", "decode", "-o", p)
    return p


def test_help_lists_every_command():
    out = run("--help").output
    for cmd in ("zoo", "ops", "opt", "exec", "compile"):
        assert cmd in out


def test_zoo_list_and_pair(tmp_path):
    out = run("zoo", "--list").output
    assert "llama2-70b" in out and "shapes-only" in out
    run("zoo", "llama-tiny", "--pair", tmp_path / "pair", "--residual-scale", "0")
    assert (tmp_path / "pair" / "draft.onnx").exists() and (tmp_path / "pair" / "target.onnx").exists()


def test_ops_json_has_fifty_plus():
    ops = json.loads(run("ops", "--json").output)
    assert len(ops) >= 50
    assert {"domain": "ai.onnx", "op_type": "MatMul"}.items() <= next(
        o for o in ops if o["op_type"] == "MatMul").items()


def test_exec_matches_onnxruntime(tmp_path, decode_model):
    spec = zoo.get_spec("llama-tiny")
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(0, spec.vocab, (1, 5)).astype(np.int64),
             "position_ids": np.arange(3, 8, dtype=np.int64)[None]}
    for i in range(spec.layers):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = rng.standard_normal(
                (1, spec.kv_heads, 3, spec.head_dim)).astype(np.float32)
    np.savez(tmp_path / "in.npz", **feeds)
    run("exec", decode_model, "--inputs", tmp_path / "in.npz", "-o", tmp_path / "out.npz",
        "--on", "reference")
    got = np.load(tmp_path / "out.npz")
    sess = ort.InferenceSession(str(decode_model), providers=["CPUExecutionProvider"])
    for o, ref in zip(sess.get_outputs(), sess.run(None, feeds)):
        err = np.max(np.abs(got[o.name] - ref)) / max(1.0, np.max(np.abs(ref)))
        assert err <= 1e-4, (o.name, err)


def test_compile_is_deterministic(tmp_path, decode_model):
    a, b = tmp_path / "a", tmp_path / "b"
    run("compile", decode_model, "--bind", "T=1,P=16", "-o", a)
    run("compile", decode_model, "--bind", "T=1", "--bind", "P=16", "-o", b)
    for rel in ("ir/target.ir", "report.json"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    report = json.loads((a / "report.json").read_text())
    names = {r["op"] for r in report["summary"]}
    assert {"attention", "rmsnorm", "linear", "gated_mlp", "rope"} <= names
    assert report["graphs"]["target"]["kv_cache"]


def test_opt_print_ir_after_and_time_passes(tmp_path, decode_model):
    ir = tmp_path / "c.ir"
    run("opt", decode_model, "-p", "fold{bind=T=1:P=2},canonicalize,fold,dce", "-o", ir)
    r = run("opt", ir, "-p", "fuse,dce", "--print-ir-after=fuse", "--time-passes",
            "-o", tmp_path / "f.ir")
    assert "// ----- IR after fuse -----" in r.stderr and "attention(" in r.stderr
    assert "pass timings" in r.stderr and "total" in r.stderr
    assert "attention(" in (tmp_path / "f.ir").read_text()
    r = run("opt", ir, "-p", "canonicalize,dce", "--print-ir-after=all")
    assert r.stderr.count("// ----- IR after") == 2


def test_opt_list_passes():
    out = run("opt", "--list-passes").output
    for name in ("canonicalize", "fold", "dce", "infer-shapes", "fuse"):
        assert name in out


def _efficiencies(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "efficiency" and v is not None:
                yield v
            else:
                yield from _efficiencies(v)
    elif isinstance(node, list):
        for v in node:
            yield from _efficiencies(v)


@pytest.mark.parametrize("hw", ["hbm-pim", "aim-gddr6", "hbm3-pim"])
def test_compile_efficiency_never_beats_the_roofline(tmp_path, decode_model, hw):
    run("compile", decode_model, "--hw", hw, "--bind", "T=1,P=16", "-o", tmp_path / "o")
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    effs = list(_efficiencies(report))
    assert effs and all(0 < e <= 1 + 1e-9 for e in effs), max(effs)


def test_compile_with_partition_reports_decisions(tmp_path, decode_model):
    out = tmp_path / "o"
    run("compile", decode_model, "--bind", "T=1,P=16", "--hw", "aim-gddr6",
        "--partition", "attacc", "-o", out)
    report = json.loads((out / "report.json").read_text())
    part = report["partition"]["target"]
    assert part["mapping"] == "attacc"
    devices = {o["op"]: o["device"] for o in report["graphs"]["target"]["ops"]
               if o["op"] in ("attention", "linear")}
    assert devices == {"attention": "pim", "linear": "npu"}
    assert (out / "npu" / "target" / "index.txt").exists()


def test_pair_compile_prints_a_table_per_graph_with_its_channels(decode_pair, tmp_path):
    r = run("compile", decode_pair / "target.onnx", "--draft", decode_pair / "draft.onnx",
               "--draft-channels", 2, "--bind", "T=1,P=16", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "@target (PIM channels 2-)" in r.output and "@draft (PIM channels 0-1)" in r.output
    assert r.output.count("ops in sequence (no NPU/PIM overlap)") == 2
