"""`--numerics device`: PIM ops compute in the preset's MAC precision through the PIM
emulator; speculation stays lossless under those numerics, and the tokens are what a
greedy loop over `speccc exec --on emulator` produces."""
from __future__ import annotations

import numpy as np
import pytest

from speccc import zoo
from speccc.driver import exec_model, save_npz_atomic
from speccc.passmanager import PassManager
from speccc.runtime.runner import RunConfig, load_pair, simulate

PROMPT, NEW = [3, 4, 5], 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("numerics")
    draft, target = zoo.build_pair("llama-tiny", residual_scale=0.3, seed=1, mode="decode")
    zoo.save(draft, d / "draft.onnx")
    zoo.save(target, d / "target.onnx")
    return d


def run(d, spec, numerics):
    module, meta = load_pair(d / "target.onnx", d / "draft.onnx")
    PassManager.parse(f"speculate{{{spec}}}").run(module)
    return simulate(module, RunConfig(prompt=PROMPT, max_new_tokens=NEW, numerics=numerics,
                                      cost_model="roofline"), meta)[0]


def test_device_numerics_are_lossless_and_reported(pair):
    ref = run(pair, "schedule=none", "device")
    spec = run(pair, "schedule=serial,gamma=3", "device")
    assert ref["numerics"] == spec["numerics"] == "device"
    assert spec["tokens"] == ref["tokens"] and len(ref["tokens"]) == NEW
    assert spec["drafted_tokens"]["accepted"] + spec["drafted_tokens"]["rejected"] > 0


def test_device_tokens_equal_a_greedy_exec_loop(pair, tmp_path):
    """The target-only run equals decoding step by step with `exec --on emulator`
    (fp16, same preset, KV placed for the same context)."""
    got = run(pair, "schedule=none", "device")["tokens"]
    context = len(PROMPT) + NEW + 1            # what the run places (gamma 0)
    tokens, past = list(PROMPT), None
    for step in range(NEW):
        feed_ids = tokens if past is None else tokens[-1:]
        start = 0 if past is None else len(tokens) - 1
        feeds = {"input_ids": np.array([feed_ids], np.int64),
                 "position_ids": np.arange(start, start + len(feed_ids))[None]}
        for i in range(3):   # llama-tiny target: 3 layers (2 + 1 extra)
            for kv in ("key", "value"):
                name = f"past_key_values.{i}.{kv}"
                feeds[name] = (past[f"present.{i}.{kv}"] if past is not None
                               else np.zeros((1, 2, 0, 16), np.float32))
        path = tmp_path / f"in{step}.npz"
        save_npz_atomic(path, feeds)
        outs, _ = exec_model(pair / "target.onnx", path, {}, None, backend="emulator",
                             precision="fp16", hw="hbm-pim", max_context=context)
        tokens.append(int(np.argmax(outs["logits"][0, -1])))
        past = outs
    assert tokens[len(PROMPT):] == got
