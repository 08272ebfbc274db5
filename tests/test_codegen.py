"""PIM codegen (targets/pim/codegen.py, kv_layout.py): kernels computed on the functional
emulator against numpy, listings (parseable, in range, byte-deterministic), timing
invariances compile relies on, and `speccc compile`'s listings and report."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from speccc import zoo
from speccc.cli import main
from speccc.errors import SpecccError
from speccc.hw import load_hw, preset_names
from speccc.ir.opdefs import lookup
from speccc.targets.pim import kv_layout as kv
from speccc.targets.pim.codegen import (ELEMENTWISE, kernel_for, op_dims, op_layouts,
                                        program_io, unsupported_reason)
from speccc.targets.pim.emulator import PimEmulator, time_program
from speccc.targets.pim.listing import Program, check_ranges, cmd, format_program, parse

PRESETS = preset_names()
rng = np.random.default_rng(0)


def placed(name, attrs, hw, shapes, *, base=3, c0=1, max_context=None):
    """attrs with a placement at `base` in a window starting at channel c0 (as place does)."""
    attrs = dict(attrs)
    regions = op_layouts(name, hw, op_dims(name, attrs, shapes), max_context=max_context)
    n = max(r.channels for r in regions)
    c0 = min(c0, hw.pim.channels - n)
    attrs.update(pim_base_row=base, pim_channels=list(range(c0, c0 + n)),
                 pim_rows=sum(r.rows for r in regions))
    if max_context:
        attrs["pim_max_context"] = max_context
    return attrs


def run(kernel, hw, ins, mode="fp32"):
    emu = PimEmulator(hw, mode=mode)
    outs = kernel.run(emu, ins)
    for _, prog in kernel.phases():   # every listing: parseable, in range, canonical
        text = format_program(prog)
        assert parse(text) == dataclasses.replace(prog, name="<listing>")
        check_ranges(prog, hw)
    return outs


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("M,K,rows,tw,bias", [(64, 64, 1, False, False), (100, 70, 3, True, True),
                                              (37, 300, 2, False, True)])
def test_linear(hw_name, M, K, rows, tw, bias):
    hw = load_hw(hw_name)
    W = rng.standard_normal((M, K) if tw else (K, M)).astype(np.float32)
    x = rng.standard_normal((1, rows, K)).astype(np.float32)
    ins = [x, W] + ([rng.standard_normal(M).astype(np.float32)] if bias else [])
    attrs = placed("linear", {"transpose_w": tw}, hw, [i.shape for i in ins])
    k = kernel_for("linear", attrs, hw, [i.shape for i in ins])
    want = lookup("linear").ref(ins, {"transpose_w": tw})[0]
    (got,) = run(k, hw, ins)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel(got, want) < 1e-5
    (got16,) = run(k, hw, ins, mode="device")
    assert rel(got16, want) < 3e-2
    text = format_program(k.phases()[0][1])
    assert ("loop tok" in text) == (rows > hw.pim.token_slots)   # rows share visits
    assert ("MACN.ab" in text) == (min(rows, hw.pim.token_slots) > 1)


@pytest.mark.parametrize("hw_name", PRESETS)
def test_matmul_with_weight(hw_name):
    hw = load_hw(hw_name)
    x = rng.standard_normal((2, 3, 40)).astype(np.float32)
    W = rng.standard_normal((40, 24)).astype(np.float32)
    shapes = [x.shape, W.shape]
    k = kernel_for("matmul", placed("matmul", {}, hw, shapes), hw, shapes)
    (got,) = run(k, hw, [x, W])
    assert got.shape == (2, 3, 24) and rel(got, x @ W) < 1e-5
    assert "2-D stored weight" in unsupported_reason("matmul", {}, [(2, 3, 4), (2, 4, 5)])


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("fused,act", [(False, "silu"), (True, "silu"), (False, "gelu_tanh")])
def test_gated_mlp(hw_name, fused, act):
    hw = load_hw(hw_name)
    K, F, N = 48, 80, 40
    x = rng.standard_normal((1, 2, K)).astype(np.float32)
    ws = ([rng.standard_normal((K, 2 * F)).astype(np.float32)] if fused else
          [rng.standard_normal((K, F)).astype(np.float32) for _ in range(2)])
    ins = [x, *ws, rng.standard_normal((F, N)).astype(np.float32)]
    shapes = [i.shape for i in ins]
    k = kernel_for("gated_mlp", placed("gated_mlp", {"activation": act}, hw, shapes), hw, shapes)
    assert [p for p, _ in k.phases()] == ["gate_up", "act", "down"]
    act_text = format_program(dict(k.phases())["act"])
    assert "EWADD" in act_text and "EWMUL" in act_text
    assert f"fn={'silu' if act == 'silu' else 'gelu'}" in act_text
    want = lookup("gated_mlp").ref(ins, {"activation": act})[0]
    (got,) = run(k, hw, ins)
    assert rel(got, want) < 1e-5


def attention_case(H, G, T, S, D, mask=None, **attrs):
    q = rng.standard_normal((1, H, T, D)).astype(np.float32)
    k = rng.standard_normal((1, G, S, D)).astype(np.float32)
    v = rng.standard_normal((1, G, S, D)).astype(np.float32)
    ins = [q, k, v] + ([mask] if mask is not None else [])
    full = {"scale": 1 / np.sqrt(D), "causal": False, "sliding_window": 0,
            "nan_to_zero": False, **attrs}
    return ins, attrs, lookup("attention").ref(ins, full)[0]


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("case", ["decode", "verify-gqa", "prefill-mask", "window"])
def test_attention(hw_name, case):
    hw = load_hw(hw_name)
    if case == "decode":
        ins, attrs, want = attention_case(4, 4, 1, 9, 16, causal=True, scale=0.25)
    elif case == "verify-gqa":
        ins, attrs, want = attention_case(6, 2, 5, 12, 32, causal=True, scale=0.2)
    elif case == "prefill-mask":
        mask = np.where(rng.random((1, 1, 6, 6)) < 0.3, -np.inf, 0).astype(np.float32)
        np.fill_diagonal(mask[0, 0], 0)
        ins, attrs, want = attention_case(2, 1, 6, 6, 24, mask=mask, scale=0.3)
    else:
        ins, attrs, want = attention_case(4, 2, 3, 10, 16, causal=True, sliding_window=4,
                                          scale=0.25)
    shapes = [i.shape for i in ins]
    k = kernel_for("attention", placed("attention", attrs, hw, shapes, max_context=40), hw,
                   shapes)
    (got,) = run(k, hw, ins)
    assert rel(got, want) < 1e-5
    (got16,) = run(k, hw, ins, mode="device")
    assert rel(got16, want) < 3e-2


def small_hw(name, **kw):
    hw = load_hw(name)
    return dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, **kw))


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("H,G,D,first,T,maxc", [(4, 2, 16, 150, 3, 400), (2, 1, 16, 255, 2, 600),
                                                (6, 3, 40, 0, 9, 9)])
def test_kv_layout_multi_visit(hw_name, H, G, D, first, T, maxc):
    """Few channels and short rows: keys span several row visits (the last one partial),
    values several tiles; appended tokens land where the layout says."""
    hw = small_hw(hw_name, channels=2, columns=8 if hw_name == "aim-gddr6" else 4)
    S = first + T
    K = rng.standard_normal((G, S, D)).astype(np.float32)
    V = rng.standard_normal((G, S, D)).astype(np.float32)
    q = rng.standard_normal((H, T, D)).astype(np.float32)
    kl = kv.plan_keys(hw, D, G, maxc, base=5)
    vl = kv.plan_values(hw, D, G, maxc, base=5 + kl.rows)
    if (hw_name, first) == ("hbm-pim", 255):  # the case that needs 2 visits, the last partial
        assert kl.visit_plan(S) == [kl.segs, 1] and kl.visits == 3
    if (hw_name, D) == ("aim-gddr6", 40):  # 40 outputs > 2 channels x 16 PUs: two passes
        assert vl.full.passes == 2
    emu = PimEmulator(hw, mode="fp32")
    emu.load_image(kv.key_image(kl, K, first))
    emu.load_image(kv.value_image(hw, vl, V, first))
    qs = np.zeros((H, T, kl.width * kl.lanes), np.float32)
    qs[..., :D] = q
    body = kv.key_append(kl, first, T, H * T * kl.width) + kv.score_body(hw, kl, S, heads=H,
                                                                          positions=T)
    emu.set_input(np.concatenate([qs.reshape(-1), kv.key_append_stream(kl, K, first, T)]))
    emu.run(Program(tuple(body) + (cmd("SYNC"),), hw.name))
    scores = kv.key_scores(kl, emu.outputs, S, heads=H, positions=T)
    kv_of = np.arange(H) // (H // G)
    assert np.allclose(scores, np.einsum("htd,hsd->hts", q, K[kv_of]), atol=1e-4)
    p = rng.random((H, T, S)).astype(np.float32)
    stream = kv.context_stream(vl, p)
    body = kv.value_append(hw, vl, first, T, len(stream) // hw.pim.pu.lanes) + kv.context_body(
        hw, vl, S, heads=H, positions=T)
    emu.set_input(np.concatenate([stream, kv.value_append_stream(vl, V, first, T)]))
    emu.state.host_out.clear()
    emu.run(Program(tuple(body) + (cmd("SYNC"),), hw.name))
    ctx = kv.context_outputs(vl, emu.outputs, S, heads=H, positions=T)
    assert np.allclose(ctx, np.einsum("hts,hsd->htd", p, V[kv_of]), atol=1e-4)


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise(hw_name, op):
    hw = load_hw(hw_name)
    n = 700
    x = rng.standard_normal((1, 2, n // 2)).astype(np.float32)
    ins = [x] + ([rng.standard_normal(n // 2).astype(np.float32)] if op in ("add", "mul")
                 else [x * 0.5] if op == "swiglu" else [])
    attrs = {"approximate": "tanh"} if op == "gelu" else {}
    k = kernel_for(op, attrs, hw, [i.shape for i in ins])
    want = lookup(op).ref(ins, lookup(op).full_attrs(attrs))[0]
    (got,) = run(k, hw, ins)
    assert got.shape == want.shape and rel(got, want) < 1e-5


@pytest.mark.parametrize("hw_name", PRESETS)
@pytest.mark.parametrize("bits,zp", [(4, False), (4, True), (8, False)])
def test_matmul_nbits(hw_name, bits, zp):
    """Block-quantized weights are dequantized at placement (banks hold 16-bit words)."""
    hw = load_hw(hw_name)
    N, K, blk = 24, 64, 32
    nb = K // blk
    attrs = {"K": K, "N": N, "bits": bits, "block_size": blk}
    x = rng.standard_normal((1, 3, K)).astype(np.float32)
    b = rng.integers(0, 256, (N, nb, blk * bits // 8)).astype(np.uint8)
    scales = (rng.random(N * nb) * 0.1).astype(np.float32)
    ins = [x, b, scales] + ([rng.integers(0, 256, N * ((nb * bits + 7) // 8)).astype(np.uint8)]
                            if zp else [])
    shapes = [i.shape for i in ins]
    k = kernel_for("matmul_nbits", placed("matmul_nbits", attrs, hw, shapes), hw, shapes)
    want = lookup("matmul_nbits").ref(ins, lookup("matmul_nbits").full_attrs(attrs))[0]
    (got,) = run(k, hw, ins)
    assert got.shape == (1, 3, N) and rel(got, want) < 1e-5


def test_unsupported_on_pim():
    hw = load_hw("hbm-pim")
    assert unsupported_reason("rmsnorm", {}) and unsupported_reason("gelu", {})
    assert unsupported_reason("gelu", {"approximate": "tanh"}) is None
    with pytest.raises(SpecccError, match="no PIM lowering for 'rmsnorm'"):
        kernel_for("rmsnorm", {}, hw, [(1, 4)])
    with pytest.raises(SpecccError, match="run the `place` pass"):
        kernel_for("linear", {}, hw, [(1, 8), (8, 8)])


def test_timing_ignores_rows_and_channel_offsets():
    """compile times a normalized twin (row 0, channel 0): the emulator's timing must not
    depend on row numbers or on which channels."""
    hw = load_hw("aim-gddr6")
    shapes = [(1, 1, 512), (512, 1000)]
    a = kernel_for("linear", placed("linear", {}, hw, shapes, base=0, c0=0), hw, shapes)
    b = kernel_for("linear", placed("linear", {}, hw, shapes, base=777, c0=9), hw, shapes)
    pa, pb = a.phases()[0][1], b.phases()[0][1]
    assert format_program(pa) != format_program(pb)
    assert time_program(pa, hw).cycles == time_program(pb, hw).cycles


@pytest.mark.parametrize("hw_name", PRESETS)
def test_program_io_matches_emulator(hw_name):
    hw = load_hw(hw_name)
    ins, attrs, _ = attention_case(4, 2, 2, 20, 16, causal=True, scale=0.25)
    shapes = [i.shape for i in ins]
    k = kernel_for("attention", placed("attention", attrs, hw, shapes, max_context=64), hw,
                   shapes)
    for _, prog in k.phases():
        b_in, b_out = program_io(prog, hw)
        assert b_in + b_out == time_program(prog, hw).bytes_external


def test_listings_are_deterministic():
    hw = load_hw("hbm-pim")
    ins, attrs, _ = attention_case(4, 2, 3, 11, 16, causal=True, scale=0.25)
    shapes = [i.shape for i in ins]
    at = placed("attention", attrs, hw, shapes, max_context=32)
    one = [format_program(p) for _, p in kernel_for("attention", at, hw, shapes).phases()]
    two = [format_program(p) for _, p in kernel_for("attention", at, hw, shapes).phases()]
    assert one == two


# --------------------------------------------------------------- compile CLI ---
@pytest.fixture(scope="module")
def decode_tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    zoo.save(zoo.build("llama-tiny", mode="decode"), p)
    return p


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compile_writes_listings_and_report(tmp_path, decode_tiny):
    out = tmp_path / "o"
    r = invoke("compile", decode_tiny, "--bind", "T=1,P=16", "-o", out, "--hw", "aim-gddr6")
    assert r.exit_code == 0, r.output
    assert "pim" in r.output and "ops in sequence (no NPU/PIM overlap)" in r.output
    report = json.loads((out / "report.json").read_text())
    assert report["hw"] == "aim-gddr6"
    ops = report["graphs"]["target"]["ops"]
    pim = [o for o in ops if o["device"] == "pim"]
    assert sorted({o["op"] for o in pim}) == ["attention", "gated_mlp", "linear"]
    for o in pim:
        for key in ("cycles", "ns", "bytes_in", "bytes_out", "energy_pj", "bound",
                    "roofline_ns", "efficiency", "phases", "pim_base_row", "pim_rows"):
            assert key in o, key
        assert o["timing"] == "emulator" and o["cycles"] > 0 and 0 < o["efficiency"] <= 1
        for ph in o["phases"]:
            text = (out / ph["listing"]).read_text()
            assert text.startswith(".hw aim-gddr6\n") and text.rstrip().endswith("SYNC")
            check_ranges(parse(text), load_hw("aim-gddr6"))
    att = next(o for o in pim if o["op"] == "attention")
    assert [p["phase"] for p in att["phases"]] == ["score", "context"]
    npu = [o for o in ops if o["device"] == "npu"]
    assert npu and all(o["ns"] > 0 for o in npu)
    listed = sorted(p.relative_to(out).as_posix() for p in (out / "pim").glob("*.pim"))
    assert all(name.startswith("pim/target.") for name in listed)
    assert listed == sorted(ph["listing"] for o in pim for ph in o["phases"])


def test_compile_is_byte_identical(tmp_path, decode_tiny):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert invoke("compile", decode_tiny, "--bind", "T=2,P=5", "-o", d).exit_code == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_recompile_removes_stale_listings_keeps_user_files(tmp_path, decode_tiny):
    """Listings the previous run wrote (its manifest) go; a user's file never does."""
    out = tmp_path / "o"
    assert invoke("compile", decode_tiny, "--bind", "T=1,P=4", "-o", out).exit_code == 0
    before = sorted((out / "pim").glob("*.pim"))
    mine = out / "pim" / "target.9999.linear.gemv.pim"
    mine.write_text("hand-written\n")
    r = invoke("compile", decode_tiny, "--bind", "T=1,P=4", "--partition", "all-npu",
               "-o", out)
    assert r.exit_code == 0, r.output
    assert before and not any(p.exists() for p in before)
    assert mine.read_text() == "hand-written\n"


@pytest.mark.parametrize("bad,needle", [("nope-preset", "unknown hardware preset"),
                                        ("broken.toml", "invalid TOML"),
                                        ("incomplete.toml", "missing")])
def test_compile_bad_hw(tmp_path, decode_tiny, bad, needle):
    if bad == "broken.toml":
        (tmp_path / bad).write_text("name = 'x'\n[pim\nchannels = 2\n")
    if bad == "incomplete.toml":
        (tmp_path / bad).write_text("name = 'x'\ndescription = 'y'\n")
    hw = str(tmp_path / bad) if bad.endswith(".toml") else bad
    out = tmp_path / "o"
    r = invoke("compile", decode_tiny, "--bind", "T=1,P=4", "-o", out, "--hw", hw)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speccc: error: ") and needle in err[0], r.stderr
    assert not out.exists()
