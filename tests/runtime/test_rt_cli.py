"""`speccc run` and `speccc plot`: happy paths and bad input (one line
`speccc: error: ...`, exit 2)."""
from __future__ import annotations

import json

import pytest

from speccc import zoo
from cli_helpers import assert_error
from cli_helpers import invoke as cli






@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    draft, target = zoo.build_pair("llama-tiny", residual_scale=0.2, mode="decode")
    zoo.save(draft, d / "draft.onnx")
    zoo.save(target, d / "target.onnx")
    zoo.save(zoo.build("llama-tiny", mode="decode", vocab=128), d / "draft128.onnx")
    zoo.save(zoo.build("gpt2-tiny", mode="decode"), d / "gpt2.onnx")
    s_draft, s_target = zoo.build_pair("llama-tiny", mode="decode", weights=False)
    zoo.save(s_draft, d / "s_draft.onnx")
    zoo.save(s_target, d / "s_target.onnx")
    return d


def pair_args(d, *more):
    return ["run", "--target", d / "target.onnx", "--draft", d / "draft.onnx",
            "--cost-model", "roofline", *more]


def test_run_json_trace_and_plot(files, tmp_path):
    trace, png = tmp_path / "t.json", tmp_path / "t.png"
    r = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 12,
                       "--gamma", 3, "--schedule", "overlap", "--trace", trace, "--json"))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert len(rep["tokens"]) == 12 and rep["mode"] == "functional"
    for key in ("tokens_per_s", "ttft_ms", "itl_ms", "mean_acceptance_length",
                "per_position_acceptance", "energy_per_token_mj", "utilization"):
        assert key in rep
    ref = json.loads(cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 12,
                                     "--schedule", "none", "--json")).stdout)
    assert ref["tokens"] == rep["tokens"]
    data = json.loads(trace.read_text())
    assert any(e["ph"] == "X" for e in data["traceEvents"])
    r = cli("plot", trace, "-o", png)
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_table_synthetic(files):
    r = cli("run", "--target", files / "s_target.onnx", "--draft", files / "s_draft.onnx",
            "--acceptance", "0.7", "--schedule", "pipeinfer", "--p-accept", "0.05",
            "--max-new-tokens", 16, "--cost-model", "roofline", "--print-schedule")
    assert r.exit_code == 0, r.output
    assert "tokens/s (modeled)" in r.stdout and "synthetic" in r.stdout
    assert "graph @schedule()" in r.stderr and "spec.burst" in r.stderr


def test_error_vocab_mismatch(files):
    assert_error(cli("run", "--target", files / "target.onnx", "--draft",
                     files / "draft128.onnx"), "vocabularies differ", "128", "256")


@pytest.mark.parametrize("gamma", [0, -2])
def test_error_gamma(files, gamma):
    assert_error(cli(*pair_args(files, "--gamma", gamma)), "--gamma must be >= 1")


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_error_acceptance(files, alpha):
    assert_error(cli(*pair_args(files, "--acceptance", alpha)), "--acceptance must be in "
                 "[0, 1]")


@pytest.mark.parametrize("args", [["--schedule", "overlap", "--draft-channels", 8],
                                  ["--schedule", "pipeinfer", "--stages", 8],
                                  ["--schedule", "serial", "--draft-channels", 9,
                                   "--hw", "hbm-pim"]])
def test_error_too_many_channels(files, args):
    assert_error(cli(*pair_args(files, *args)), "PIM channels", "hbm-pim has 8")


def test_error_prompt_longer_than_context(files):
    # gpt2-tiny: a learned position table of 128 rows
    assert_error(cli("run", "--target", files / "gpt2.onnx", "--schedule", "none",
                     "--prompt-len", 200), "prompt has 200 tokens", "context is 128")
    # llama-tiny computes rotary on the fly: its zoo metadata says 128 positions
    assert_error(cli(*pair_args(files, "--prompt-len", 129)), "context is 128")
    assert_error(cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-context", 2)),
                 "prompt has 3 tokens", "context is 2")
    assert_error(cli(*pair_args(files, "--prompt-len", 100, "--max-new-tokens", 40)),
                 "exceeds the model's context of 128")


def test_pipeinfer_batch(files):
    """`--batch 3 --schedule pipeinfer`: a functional batched run (the refusal is gone);
    every request's tokens equal the target-only run, and the report has per-request
    figures whose sums are its aggregates. (--prompt-file with several prompts needs a
    tokenizer: tests/smollm2/test_smollm2_text.py runs it under pipeinfer.)"""
    base = pair_args(files, "--max-new-tokens", 12, "--prompt-ids", "3,4,5", "--json")
    r = cli(*base, "--batch", 3, "--schedule", "pipeinfer", "--p-accept", "0.1",
            "--gamma", 3)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    alone = json.loads(cli(*base, "--schedule", "none").stdout)
    assert rep["batch"] == 3 and [q["tokens"] for q in rep["requests"]] == \
        [alone["tokens"]] * 3
    assert rep["generated_tokens"] == sum(q["generated_tokens"] for q in rep["requests"])
    assert rep["verifies"] == sum(q["verifies"] for q in rep["requests"]) > 0
    both = cli(*base, "--batch", 3, "--schedule", "serial,pipeinfer", "--rounds", "batch",
               "--p-accept", "0.1", "--gamma", 3)   # --rounds shapes pipeinfer only
    assert both.exit_code == 0, both.output
    for rep in json.loads(both.stdout):
        assert [q["tokens"] for q in rep["requests"]] == [alone["tokens"]] * 3


@pytest.mark.parametrize("args,needle", [
    (["--schedule", "serial"], "needs --draft"),
    (["--acceptance", "0.5", "--temperature", "1"], "--temperature needs functional"),
    (["--prompt-ids", "1,x"], "--prompt-ids expects"),
    (["--prompt-ids", "1,300"], "outside the vocabulary"),
])
def test_error_bad_options(files, args, needle):
    base = (["run", "--target", files / "target.onnx"] if "needs --draft" in needle
            else pair_args(files))
    assert_error(cli(*base, *args), needle)


def test_error_shapes_only_needs_acceptance(files):
    assert_error(cli("run", "--target", files / "s_target.onnx", "--draft",
                     files / "s_draft.onnx"), "no weight data", "--acceptance")


def test_error_plot_bad_trace(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{}")
    assert_error(cli("plot", p, "-o", tmp_path / "x.png"), "not a speccc trace")
    assert not (tmp_path / "x.png").exists()


def _module_ir(files, tmp_path, spec):
    """@draft, @target and @schedule of the pair as one .ir file."""
    from speccc.ir.printer import print_module
    from speccc.passmanager import PassManager
    from speccc.runtime.runner import load_pair
    module, _ = load_pair(files / "target.onnx", files / "draft.onnx")
    PassManager.parse(f"speculate{{{spec}}}").run(module)
    path = tmp_path / "module.ir"
    path.write_text(print_module(module))
    return path


def test_run_module_runs_the_written_schedule(files, tmp_path):
    path = _module_ir(files, tmp_path, "schedule=serial,gamma=2")
    models = ["--target", files / "target.onnx", "--draft", files / "draft.onnx"]
    args = ["--prompt-ids", "1,2,3", "--max-new-tokens", 10, "--cost-model", "roofline",
            "--json"]
    written = json.loads(cli("run", "--module", path, *models, *args).stdout)
    same = json.loads(cli(*pair_args(files, "--gamma", 2, *args[:-3], "--json")).stdout)
    assert written["tokens"] == same["tokens"] and written["time_ms"] == same["time_ms"]
    path.write_text(path.read_text().replace("tokens = 2}", "tokens = 1}")
                    .replace("positions = 3}", "positions = 2}"))
    edited = json.loads(cli("run", "--module", path, *models, *args).stdout)
    assert edited["gamma"] == 1 and edited["tokens"] == same["tokens"]
    assert edited["verifies"] > same["verifies"]
    # without --target the file's own (weightless) graphs run synthetically
    synth = cli("run", "--module", path, "--acceptance", 0.5, "--max-new-tokens", 8,
                "--cost-model", "roofline", "--json")
    assert synth.exit_code == 0, synth.output
    assert json.loads(synth.stdout)["mode"] == "synthetic"


def test_run_module_bad_input(files, tmp_path):
    path = _module_ir(files, tmp_path, "schedule=serial,gamma=2")
    assert_error(cli("run", "--module", path, "--gamma", 3), "--gamma do not apply")
    assert_error(cli("run", "--module", path, "--max-new-tokens", 4),
                 "has no weight data")
    bare = tmp_path / "bare.ir"
    bare.write_text(path.read_text().split("graph @schedule")[0])
    assert_error(cli("run", "--module", bare, "--acceptance", 0.5), "has no @schedule graph")
    path.write_text(path.read_text().replace('on = ["pim"], positions', 'on = ["gpu"], '
                                             'positions'))
    assert_error(cli("run", "--module", path, "--acceptance", 0.5), "unknown resource 'gpu'",
                 "module.ir:")
    assert_error(cli("run", "--max-new-tokens", 4), "give --target")


def test_run_that_drafted_nothing_warns(files):
    r = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 6,
                       "--schedule", "pipeinfer", "--p-accept", 0.99, "--json"))
    assert r.exit_code == 0, r.output
    warn = [line for line in r.stderr.splitlines() if line.startswith("speccc: warning:")]
    assert len(warn) == 1 and "pipeinfer drafted nothing" in warn[0] and "p_accept=0.99" \
        in warn[0], r.stderr
    assert json.loads(r.stdout)["warnings"] == [warn[0].removeprefix("speccc: warning: ")]
    ok = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 6, "--json"))
    assert json.loads(ok.stdout)["warnings"] == [] and "warning" not in ok.stderr


def test_compare_schedules_in_one_run(files, tmp_path):
    trace = tmp_path / "t.json"
    r = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 10,
                       "--schedule", "serial,overlap", "--gamma", "2,3", "--trace", trace,
                       "--json"))
    assert r.exit_code == 0, r.output
    reps = json.loads(r.stdout)
    assert [(x["schedule"], x["gamma"]) for x in reps] == [
        ("none", 0), ("serial", 2), ("serial", 3), ("overlap", 2), ("overlap", 3)]
    assert all(x["tokens"] == reps[0]["tokens"] for x in reps)   # lossless, one prompt
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "t.none.json", "t.overlap-g2.json", "t.overlap-g3.json", "t.serial-g2.json",
        "t.serial-g3.json"]
    table = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 10,
                           "--schedule", "none,serial"))
    assert table.exit_code == 0 and "schedules compared" in table.stdout
    assert_error(cli(*pair_args(files, "--schedule", "serial,fast")), "--schedule takes")
    assert_error(cli(*pair_args(files, "--gamma", "2,x")), "--gamma expects integers")


def test_plot_overlays_runs_on_one_axis(files, tmp_path):
    trace = tmp_path / "t.json"
    r = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 8,
                       "--schedule", "none,overlap", "--trace", trace))
    assert r.exit_code == 0, r.output
    png = tmp_path / "cmp.png"
    r = cli("plot", tmp_path / "t.none.json", tmp_path / "t.overlap-g4.json", "-o", png,
            "--window", "0:0.01")
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "t.none.json").read_text())
    assert len(data["otherData"]["report"]["token_times_ms"]) == 8
    assert_error(cli("plot", tmp_path / "t.none.json", "-o", png, "--window", "3:1"),
                 "--window START must be below END")


def test_compile_writes_the_module_run_executes(files, tmp_path):
    """compile --draft writes OUT/ir/module.ir (draft, target, @schedule); run --module
    executes it exactly as the same options given to run."""
    out = tmp_path / "out"
    r = cli("compile", files / "target.onnx", "--draft", files / "draft.onnx",
            "--draft-channels", 2, "--schedule", "overlap", "--gamma", 3,
            "--bind", "T=1,P=16", "-o", out)
    assert r.exit_code == 0, r.output
    text = (out / "ir" / "module.ir").read_text()
    assert "graph @schedule" in text and "speculative = true" in text
    args = ["--prompt-ids", "1,2,3", "--max-new-tokens", 10, "--cost-model", "roofline",
            "--json"]
    models = ["--target", files / "target.onnx", "--draft", files / "draft.onnx"]
    ran = json.loads(cli("run", "--module", out / "ir" / "module.ir", *models, *args).stdout)
    same = json.loads(cli("run", *models, "--schedule", "overlap", "--gamma", 3,
                          "--draft-channels", 2, *args).stdout)
    for key in ("tokens", "time_ms", "energy_mj", "runs", "channel_groups"):
        assert ran[key] == same[key], key
    assert_error(cli("compile", files / "target.onnx", "--draft", files / "draft.onnx",
                     "--schedule", "pipeinfer", "--bind", "T=1,P=16", "-o", tmp_path / "x"),
                 "give --draft-channels N")
    assert not (tmp_path / "x").exists()


def test_compare_with_draft_knobs(files):
    """--adaptive/--p-min shape serial/overlap drafts; compared none/pipeinfer runs ignore them."""
    r = cli(*pair_args(files, "--prompt-ids", "1,2,3", "--max-new-tokens", 6, "--schedule",
                       "none,serial,pipeinfer", "--adaptive", "--p-min", 0.1, "--json"))
    assert r.exit_code == 0, r.output
    assert [x["schedule"] for x in json.loads(r.stdout)] == ["none", "serial", "pipeinfer"]
