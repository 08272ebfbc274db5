"""`speccc info` and `speccc inputs`: a model's interface, ops and fusion; seeded inputs
that `speccc exec` accepts."""
from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import assert_error, invoke

from speccc import zoo


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("info") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


def test_info(tiny):
    r = invoke("info", tiny, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    spec = zoo.get_spec("llama-tiny")
    assert [i["name"] for i in d["inputs"]][:2] == ["input_ids", "position_ids"]
    assert d["outputs"][-1] == {"name": "logits", "type": f"tensor<1x?Tx{spec.vocab}xf32>"}
    assert len(d["kv_cache"]) == 2 * spec.layers and d["vocab"] == spec.vocab
    assert d["parameters"] == zoo.param_count(zoo.build("llama-tiny", mode="decode"))
    assert d["ops"]["attention"] == spec.layers and d["max_context"] == spec.max_positions
    assert d["fused"]["attention"] == f"all {spec.layers} layers"
    text = invoke("info", tiny)
    assert text.exit_code == 0 and "fused attention" in text.stdout


def test_inputs_feed_exec(tiny, tmp_path):
    npz, out = tmp_path / "in.npz", tmp_path / "out.npz"
    r = invoke("inputs", tiny, "--bind", "T=2,P=5", "-o", npz, "--seed", 3)
    assert r.exit_code == 0, r.output
    feeds = dict(np.load(npz))
    assert feeds["position_ids"].tolist() == [[5, 6]]
    assert feeds["past_key_values.0.key"].shape[2] == 5
    r = invoke("exec", tiny, "--inputs", npz, "--bind", "T=2,P=5", "-o", out)
    assert r.exit_code == 0, r.output
    assert np.load(out)["logits"].shape[1] == 2
    again = tmp_path / "again.npz"
    invoke("inputs", tiny, "--bind", "T=2,P=5", "-o", again, "--seed", 3)
    assert all(np.array_equal(v, np.load(again)[k]) for k, v in feeds.items())


def test_inputs_bad_bind(tiny, tmp_path):
    assert_error(invoke("inputs", tiny, "--bind", "T=x", "-o", tmp_path / "x.npz"))
    assert not (tmp_path / "x.npz").exists()
