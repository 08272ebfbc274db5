"""passes/place.py: PIM ops' weights and KV cache mapped to channel windows and bank rows,
without overlap, within capacity, deterministic; clear errors when they do not fit."""
from __future__ import annotations

import re
from importlib import resources

import pytest
from click.testing import CliRunner

from speccc import zoo
from speccc.cli import main
from speccc.errors import SpecccError
from speccc.frontend.onnx_import import import_model
from speccc.hw import load_hw
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.passmanager import PassManager
from speccc.pipeline import CANONICAL_PIPELINE


def placed_module(model, pipeline):
    m = import_model(model) if not isinstance(model, str) else parse_module(model)
    PassManager.parse(pipeline).run(m)
    return m


def regions(module):
    out = []
    for g in module:
        for op in g.ops():
            if "pim_base_row" in op.attrs:
                a = op.attrs
                out.append((g.name, op.name, a["pim_base_row"], a["pim_rows"],
                            set(a["pim_channels"])))
    return out


def assert_disjoint(regs, rows):
    for i, (_, _, b1, r1, c1) in enumerate(regs):
        assert 0 <= b1 and b1 + r1 <= rows
        for (_, _, b2, r2, c2) in regs[i + 1:]:
            if c1 & c2:
                assert b1 + r1 <= b2 or b2 + r2 <= b1, (regs[i], (b2, r2, c2))


@pytest.fixture(scope="module")
def tiny_decode(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


@pytest.mark.parametrize("hw", ["hbm-pim", "aim-gddr6", "hbm3-pim"])
def test_tiny_model_placed_without_overlap(tiny_decode, hw):
    m = placed_module(tiny_decode, f"{CANONICAL_PIPELINE},place{{hw={hw},bind=T=1:P=16}}")
    regs = regions(m)
    assert sorted({r[1] for r in regs}) == ["attention", "gated_mlp", "linear"]
    assert len(regs) == 13
    assert_disjoint(regs, load_hw(hw).pim.rows)
    att = [op for g in m for op in g.ops() if op.name == "attention"]
    assert all(op.attrs["pim_max_context"] == 17 for op in att)


def test_deterministic_and_idempotent(tiny_decode):
    pipe = f"{CANONICAL_PIPELINE},place{{hw=hbm-pim,bind=T=1:P=16}}"
    a = print_module(placed_module(tiny_decode, pipe))
    b = print_module(placed_module(tiny_decode, pipe))
    assert a == b
    again = placed_module(a, "place{hw=hbm-pim,bind=T=1:P=16}")
    assert print_module(again) == a


TWO_GRAPHS = """
graph @draft(%x: tensor<1x64xf32>) -> ("y": tensor<1x64xf32>) {
  %0 = weight() {name = "w"} : tensor<64x64xf32>
  %1 = linear(%x, %0) : tensor<1x64xf32>
  return %1
}
graph @target(%x: tensor<1x64xf32>) -> ("y": tensor<1x128xf32>) {
  %0 = weight() {name = "w"} : tensor<64x128xf32>
  %1 = linear(%x, %0) : tensor<1x128xf32>
  %2 = weight() {name = "v"} : tensor<128x64xf32>
  %3 = linear(%1, %2) {device = "pim"} : tensor<1x64xf32>
  return %1
}
"""


def test_graphs_of_a_module_share_the_device():
    regs = regions(placed_module(TWO_GRAPHS, "place{hw=hbm-pim}"))
    assert [r[0] for r in regs] == ["draft", "target", "target"]
    assert_disjoint(regs, 16384)
    # one channel each, lowest free rows first: draft at channel 0, the others beside it
    assert [(r[2], sorted(r[4])) for r in regs] == [(0, [0]), (0, [1]), (0, [2])]


def test_max_context_option_and_errors():
    text = """
graph @g(%q: tensor<1x2x?Tx16xf32>, %k: tensor<1x2x?{P+T}x16xf32>) -> ("a": tensor<1x2x?Tx16xf32>) {
  %0 = attention(%q, %k, %k) {causal = true, scale = 0.25} : tensor<1x2x?Tx16xf32>
  return %0
}
"""
    m = placed_module(text, "place{hw=aim-gddr6,max_context=2048}")
    (op,) = [op for op in next(iter(m)).ops()]
    assert op.attrs["pim_max_context"] == 2048
    with pytest.raises(SpecccError, match="needs a number for its KV length"):
        placed_module(text, "place{hw=aim-gddr6}")
    with pytest.raises(SpecccError, match="exceeds max_context=8"):
        placed_module(text, "place{hw=aim-gddr6,bind=T=2:P=7,max_context=8}")


def test_weights_must_be_stored():
    text = """
graph @g(%x: tensor<1x8xf32>, %w: tensor<8x8xf32>) -> ("y": tensor<1x8xf32>) {
  %0 = linear(%x, %w) : tensor<1x8xf32>
  return %0
}
"""
    with pytest.raises(SpecccError, match="operand 1 is computed from graph inputs"):
        placed_module(text, "place")
    # a weight computed from weights only (e.g. dequantized) is fine
    ok = text.replace("%w: tensor<8x8xf32>", "%u: tensor<1xf32>").replace(
        "%0 = linear(%x, %w)", '%9 = weight() {name = "w"} : tensor<8x8xf32>\n'
        "  %8 = neg(%9) : tensor<8x8xf32>\n  %0 = linear(%x, %8)")
    assert regions(placed_module(ok, "place"))


def test_unlowerable_op_on_pim_is_an_error():
    text = """
graph @g(%x: tensor<1x8xf32>, %w: tensor<8xf32>) -> ("y": tensor<1x8xf32>) {
  %0 = rmsnorm(%x, %w) {device = "pim", eps = 1e-05} : tensor<1x8xf32>
  return %0
}
"""
    with pytest.raises(SpecccError, match="no PIM lowering for 'rmsnorm'"):
        placed_module(text, "place")


def _shrunk_preset(tmp_path, rows: int):
    text = (resources.files("speccc.hw") / "presets" / "hbm-pim.toml").read_text()
    text = re.sub(r"(?m)^rows = \d+", f"rows = {rows}", text)
    text = re.sub(r'(?m)^name = "hbm-pim"', 'name = "small-pim"', text)
    p = tmp_path / "small.toml"
    p.write_text(text)
    return p


def test_does_not_fit_custom_preset_cli(tmp_path, tiny_decode):
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["compile", str(tiny_decode), "--bind", "T=1,P=16", "-o",
                                  str(out), "--hw", str(_shrunk_preset(tmp_path, 8))])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert re.search(r"speccc: error: place: the model does not fit small.toml \(from small-pim\): "
                     r"it needs \d+ "
                     r"rows per bank but the preset has 8 \(", err[0]), err[0]
    assert not out.exists()


def test_llama2_7b_does_not_fit_hbm_pim(tmp_path):
    """LLaMA-2-7B (shapes-only) on the 4 GiB hbm-pim preset: one clear line, exit 2, and
    nothing written; the 16 GiB presets take it."""
    model = tmp_path / "7b.onnx"
    zoo.save(zoo.build("llama2-7b", mode="decode"), model)
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["compile", str(model), "--bind", "T=1,P=1024", "-o",
                                  str(out), "--hw", "hbm-pim"])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.output
    m = re.search(r"does not fit hbm-pim: it needs (\d+) rows per bank but the preset has 16384 "
                  r"\(([\d.]+) GiB placed, ([\d.]+) GiB of weights and KV cache as 16-bit words, "
                  r"vs 4.00 GiB capacity\)", err[0])
    assert m, err[0]
    assert int(m[1]) > 3 * 16384 and 12 < float(m[3]) < 13.5
    assert not out.exists()


@pytest.mark.parametrize("hw", ["aim-gddr6", "hbm3-pim"])
def test_llama2_7b_fits_16gib_presets(tmp_path, hw):
    m = import_model(_save_7b(tmp_path))
    PassManager.parse(f"fold{{bind=T=1:P=1024}},{CANONICAL_PIPELINE},place{{hw={hw}}}").run(m)
    regs = regions(m)
    assert len(regs) == 32 * 6 + 1
    assert_disjoint(regs, 16384)


def _save_7b(tmp_path):
    p = tmp_path / "7b.onnx"
    zoo.save(zoo.build("llama2-7b", mode="decode"), p)
    return p
