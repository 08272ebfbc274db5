"""Issue 17 item 6, CLI side: every command on a corpus of bad files and hostile option
values (generated here from a few seeds with tests/fuzz_mutants.py, seeded, so the corpus
is the same on every run and nothing large is kept on disk). Each case: exit 0 (a
mutant that is still valid) or the documented failure code, a failure is exactly one
line `speccc: error: ...`, never a traceback (RecursionError, MemoryError, ...), never
longer than a bound, and nothing written to -o when it fails."""
from __future__ import annotations

import os
import random
import time

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from speccc.cli import main
from fuzz_mutants import BINARY_MUTATORS, mutants, onnx_field_mutant
from test_fuzz_properties import IR_SEED, LISTING_SEED, TOML_SEEDS

CASE_SECONDS = 20  # a hang is minutes; a loaded 2-core CI box needs slack
TRACE_SEED = (b'{"traceEvents": [{"ph": "M", "name": "thread_name", "tid": 1, "args": {"name": '
              b'"npu"}}, {"ph": "X", "name": "d", "tid": 1, "ts": 0, "dur": 5, "args": '
              b'{"run_kind": "draft", "cancelled": false}}, {"ph": "i", "tid": 1, "ts": 3}]}')
BAD_VALUES = ["nan", "inf", "-inf", "-1", "0", "1e309", "99999999999999999999", "", "abc",
              "1e6", "1000000", "[/x]", "\u202e", "0x10", "1.5", "fold{bind=T=99999999999999}",
              "a{" * 200, "canonicalize,,", "place{hw=../../etc/passwd}", "T=1,T=2"]

# family -> how many mutants; the sum is the corpus size (>= 1000, issue 17)
COUNTS = {"opt": 260, "asm": 120, "asm-check": 80, "asm-run": 80, "hw": 200, "plot": 50,
          "exec-npz": 90, "exec-onnx": 70, "compile-onnx": 30, "exec-fields": 80,
          "compile-fields": 40}
OPTION_CASES = [  # (command prefix, option) given every BAD_VALUE
    (["run", "--target", "{model}", "--schedule", "none"], "--gamma"),
    (["run", "--target", "{model}", "--schedule", "none"], "--batch"),
    (["run", "--target", "{model}", "--schedule", "none"], "--temperature"),
    (["run", "--target", "{model}", "--schedule", "none"], "--max-new-tokens"),
    (["run", "--target", "{model}", "--schedule", "none", "--acceptance", "0.5"], "--p-accept"),
    (["run", "--target", "{model}", "--schedule", "none", "--max-new-tokens", "1"],
     "--prompt-ids"),
    (["zoo", "llama-tiny", "-o", "{out}"], "--layers"),
    (["zoo", "llama-tiny", "-o", "{out}"], "--hidden"),
    (["zoo", "llama2-7b", "-o", "{out}"], "--vocab"),
    (["compile", "{model}", "-o", "{outdir}"], "--bind"),
    (["compile", "{model}", "--bind", "T=1", "-o", "{outdir}"], "--print-ir-after"),
    (["compile", "{model}", "--bind", "T=1", "-o", "{outdir}"], "--hw"),
    (["compile", "{model}", "--bind", "T=1", "-o", "{outdir}"], "--max-context"),
    (["opt", "{ir}"], "-p"),
    (["opt", "{ir}", "-p", "dce"], "--print-ir-after"),
    (["exec", "{model}", "--inputs", "{npz}", "-o", "{out}"], "--bind"),
    (["exec", "{model}", "--inputs", "{npz}", "-o", "{out}"], "-p"),
]


def _model_bytes() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 8])
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 8], np.eye(8, dtype=np.float32).ravel())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]),
                          opset_imports=[helper.make_opsetid("", 18)])
    return m.SerializeToString()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    (d / "m.onnx").write_bytes(_model_bytes())
    np.savez(d / "in.npz", x=np.ones((1, 2, 8), np.float32))
    (d / "s.ir").write_bytes(IR_SEED)
    return d


def _run(args):
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r, time.perf_counter() - t0


def _verdict(r, seconds, ok_codes, out) -> str | None:
    """None if the case behaved; else what went wrong (for the report)."""
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return f"{type(r.exception).__name__}: {r.exception}"
    if seconds > CASE_SECONDS:
        return f"took {seconds:.1f} s"
    if r.exit_code not in ok_codes:
        return f"exit {r.exit_code}: {r.output[-300:]}"
    if "Traceback" in r.output:
        return "traceback in output"
    if r.exit_code:
        err = r.stderr.strip().splitlines()
        if len(err) != 1 or not err[0].startswith("speccc: error: "):
            return f"not one error line: {r.stderr[:300]!r}"
        if out is not None and os.path.lexists(out):
            return f"failed but wrote {out}"
    return None


def _family(tmp_path, seeds, family):
    """[(args, ok exit codes, output path or None)] for one family, files written."""
    n = COUNTS[family]
    cases = []
    model, npz = seeds / "m.onnx", seeds / "in.npz"
    if family == "opt":
        data = mutants(IR_SEED, n, 1)
        files = [("c.ir", d) for d in data]
        mk = lambda f, o: (["opt", f, "-o", o], {0, 2}, o)  # noqa: E731
    elif family.startswith("asm"):
        data = mutants(LISTING_SEED, n, {"asm": 2, "asm-check": 3, "asm-run": 4}[family])
        files = [("l.pim", d) for d in data]
        flags = {"asm": [], "asm-check": ["--check"],
                 "asm-run": ["--run", "--max-commands", "200000"]}[family]
        codes = {0, 1, 2} if family == "asm-check" else {0, 2}
        mk = lambda f, o: (["asm", f, *flags, "-o", o], codes, o)  # noqa: E731
    elif family == "hw":
        data = [d for i, s in enumerate(TOML_SEEDS) for d in mutants(s, n // 2, 10 + i)]
        files = [("h.toml", d) for d in data]
        mk = lambda f, o: (["hw", "show", f, "--json"], {0, 2}, None)  # noqa: E731
    elif family == "plot":
        files = [("t.json", d) for d in mutants(TRACE_SEED, n, 5)]
        mk = lambda f, o: (["plot", f, "-o", o], {0, 2}, o)  # noqa: E731
    elif family == "exec-npz":
        files = [("i.npz", d) for d in mutants(npz.read_bytes(), n, 6, BINARY_MUTATORS)]
        mk = lambda f, o: (["exec", model, "--inputs", f, "-o", o], {0, 2}, o)  # noqa: E731
    elif family == "exec-onnx":
        files = [("m.onnx", d) for d in mutants(model.read_bytes(), n, 7, BINARY_MUTATORS)]
        mk = lambda f, o: (["exec", f, "--inputs", npz, "-o", o], {0, 2}, o)  # noqa: E731
    elif family.endswith("-fields"):  # protobuf-valid models with hostile field values
        rng = random.Random(9 if family.startswith("exec") else 10)
        files = [("m.onnx", onnx_field_mutant(model.read_bytes(), rng)) for _ in range(n)]
        mk = ((lambda f, o: (["exec", f, "--inputs", npz, "-o", o], {0, 2}, o))  # noqa: E731
              if family.startswith("exec") else
              (lambda f, o: (["compile", f, "--bind", "T=2", "-o", o], {0, 2}, o)))  # noqa: E731
    else:  # compile-onnx
        files = [("m.onnx", d) for d in mutants(model.read_bytes(), n, 8, BINARY_MUTATORS)]
        mk = lambda f, o: (["compile", f, "--bind", "T=2", "-o", o], {0, 2}, o)  # noqa: E731
    for i, (name, data) in enumerate(files):
        cases.append((name, data, *mk(tmp_path / name, tmp_path / f"out{i}")))
    return cases


@pytest.mark.parametrize("family", sorted(COUNTS))
def test_fuzz_files(tmp_path, seeds, family):
    bad, slowest = [], 0.0
    for name, data, args, codes, out in _family(tmp_path, seeds, family):
        (tmp_path / name).write_bytes(data)
        r, sec = _run(args)
        slowest = max(slowest, sec)
        why = _verdict(r, sec, codes, out)
        if why:
            bad.append((data[:200], why))
    assert not bad, f"{len(bad)} bad of {COUNTS[family]}: {bad[:3]}"


def test_fuzz_option_values(tmp_path, seeds):
    bad = []
    for prefix, option in OPTION_CASES:
        for value in BAD_VALUES:
            fill = {"{model}": str(seeds / "m.onnx"), "{out}": str(tmp_path / "z.onnx"),
                    "{outdir}": str(tmp_path / "o"), "{ir}": str(seeds / "s.ir"),
                    "{npz}": str(seeds / "in.npz")}
            args = [fill.get(a, a) for a in prefix] + [option, value]
            out = tmp_path / ("o" if "compile" in prefix else "z.onnx")
            r, sec = _run(args)
            why = _verdict(r, sec, {0, 2}, out)
            if why:
                bad.append((args[-2:], why))
            for p in (tmp_path / "z.onnx", tmp_path / "o"):
                if p.is_file():
                    p.unlink()
                elif p.is_dir():
                    import shutil
                    shutil.rmtree(p)
    assert not bad, f"{len(bad)} bad: {bad[:5]}"


def test_fuzz_special_outputs(tmp_path, seeds):
    """-o at a FIFO, a socket-free directory, an empty string, for every writer."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "l.pim").write_bytes(LISTING_SEED)
    writers = [["zoo", "llama-tiny", "-o"], ["exec", seeds / "m.onnx", "--inputs",
                                              seeds / "in.npz", "-o"],
               ["asm", tmp_path / "l.pim", "-o"], ["asm", tmp_path / "l.pim", "--trace"],
               ["opt", tmp_path / "l.pim", "-o"]]
    bad = []
    for w in writers:
        for target in (tmp_path / "fifo", tmp_path / "dir", ""):
            r, sec = _run([*w, target])
            if r.exit_code != 2 or _verdict(r, sec, {2}, None):
                bad.append((w[0], str(target), r.exit_code, r.output[-200:]))
    assert not bad, bad


def test_corpus_size():
    n = sum(COUNTS.values()) + len(OPTION_CASES) * len(BAD_VALUES) + 15
    assert n >= 1000, n
