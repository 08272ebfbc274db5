"""SmolLM2 text in -> text out: the GGUF tokenizer equals transformers' on sample text,
and greedy generation through every schedule equals transformers' greedy generation from
the same GGUF (tests/fixtures/smollm2_transformers.json, made by make_fixture.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import assert_error
from cli_helpers import invoke as run
from gguf_helpers import needs_wheel
from speccc.zoo import smollm2

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" /
                      "smollm2_transformers.json").read_text())
SCHEDULES = ("none", "serial", "overlap", "pipeinfer")

pytestmark = needs_wheel


@pytest.fixture(scope="module")
def tok():
    from speccc.tokenizer import Tokenizer
    return Tokenizer.from_gguf(smollm2.wheel_gguf())


@pytest.fixture(scope="module")
def pair():
    from speccc.runtime.runner import load_pair
    return load_pair(str(smollm2.model_path("smollm2")), str(smollm2.model_path("smollm2-int4")))


def test_tokenizer_round_trip(tok):
    for case in FIXTURE["tokenize"]:
        ids = tok.encode(case["text"])
        assert ids == case["ids"], case["text"]
        assert tok.decode(ids, skip_special=False) == case["text"]


def test_tokenizer_fields_cached_per_file(tmp_path, monkeypatch):
    """The GGUF's tokenizer metadata is parsed once per file (path, size, mtime), then
    read from the cache; the cached tokenizer encodes as the parsed one does, and a
    changed file is parsed again."""
    import os
    import shutil

    from speccc.tokenizer import Tokenizer
    from speccc.zoo import gguf
    monkeypatch.setenv("SPECCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECCC_NO_CACHE", raising=False)
    path = shutil.copy(smollm2.wheel_gguf(), tmp_path / "m.gguf")
    parsed = []
    real = gguf.read_fields
    monkeypatch.setattr(gguf, "read_fields", lambda *a: parsed.append(a) or real(*a))
    first = Tokenizer.from_gguf(path)
    again = Tokenizer.from_gguf(path)
    assert len(parsed) == 1 and len(list((tmp_path / "cache" / "tokenizer").iterdir())) == 1
    for case in FIXTURE["tokenize"]:
        assert again.encode(case["text"]) == first.encode(case["text"]) == case["ids"]
    assert (again.bos_id, again.eos_id, again.chat_template) == (
        first.bos_id, first.eos_id, first.chat_template)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    Tokenizer.from_gguf(path)
    assert len(parsed) == 2


def test_chat_template(tok):
    text = tok.chat("Hi")
    assert text.startswith("<|im_start|>system\n") and text.endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tok.encode("<|im_end|>") == [tok.eos_id]


def generate(pair, schedule, ids, n):
    from speccc.passmanager import PassManager
    from speccc.runtime.runner import RunConfig, simulate
    module, meta = pair
    PassManager.parse(f"speculate{{schedule={schedule},gamma=4}}").run(module)
    rep, _ = simulate(module, RunConfig(max_new_tokens=n, prompt=ids, cost_model="roofline"),
                      meta)
    return rep


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_greedy_equals_transformers_8(pair, schedule):
    case = FIXTURE["generate"][0]
    assert generate(pair, schedule, case["prompt_ids"], 8)["tokens"] == case["tokens"][:8]


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(FIXTURE["generate"])))
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_greedy_equals_transformers_32(pair, schedule, case):
    case = FIXTURE["generate"][case]
    rep = generate(pair, schedule, case["prompt_ids"], 32)
    assert rep["tokens"] == case["tokens"]


def test_run_prompt_json_and_trace(tmp_path):
    trace = tmp_path / "t.json"
    # schedule none: the text layer is the same for every schedule (those are covered
    # above), and loading one model keeps this test short
    r = run("run", "--target", "smollm2", "--prompt", FIXTURE["generate"][0]["prompt"],
            "--max-new-tokens", 4, "--schedule", "none", "--cost-model", "roofline",
            "--trace", trace, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["tokens"] == FIXTURE["generate"][0]["tokens"][:4]
    assert rep["text"] == " Paris.\n\n" and "acceptance_rate" in rep
    assert json.loads(trace.read_text())["traceEvents"]


def test_prompt_longer_than_context(tmp_path):
    prompts, trace = tmp_path / "p.txt", tmp_path / "t.json"
    prompts.write_text("Hello\n" + "word " * 40 + "\n")
    r = run("run", "--target", "smollm2", "--schedule", "none", "--prompt-file", prompts,
            "--max-context", 32, "--max-new-tokens", 4, "--trace", trace)
    assert_error(r, "prompt 2 has 41 tokens", "context of 32")
    assert not trace.exists()


def test_chat_needs_a_prompt():
    assert_error(run("run", "--target", "smollm2", "--schedule", "none", "--chat"),
                 "--chat needs --prompt")


def test_prompt_file_runs_as_one_batch(tmp_path):
    """Two prompts, one batched run: each request's text equals its own greedy run."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("The capital of France is\n\nOne, two, three,\n")
    args = ["--target", "smollm2", "--draft", "smollm2-int4", "--schedule", "serial",
            "--max-new-tokens", 4, "--cost-model", "roofline", "--json"]
    r = run("run", "--prompt-file", prompts, *args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["batch"] == 2 and [q["prompt"] for q in rep["requests"]] == [
        "The capital of France is", "One, two, three,"]
    alone = json.loads(run("run", "--prompt", "One, two, three,", *args).stdout)
    assert rep["requests"][1]["text"] == alone["text"]
    pi = run("run", "--prompt-file", prompts, *args[:4], "--schedule", "pipeinfer",
             *args[6:])
    assert pi.exit_code == 0, pi.output
    pi = json.loads(pi.stdout)
    assert pi["batch"] == 2 and [q["text"] for q in pi["requests"]] == [
        q["text"] for q in rep["requests"]]
