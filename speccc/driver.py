"""What the CLI commands do, without the terminal: returns values, raises typed errors.

Every output file is written atomically (temp file + rename) and only after all work
succeeded, so a failing command never leaves a partial or clobbered `-o`.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np

from speccc.errors import SpecccError
from speccc.ir.core import Module
from speccc.passmanager import PassManager
from speccc.pipeline import CANONICAL_PIPELINE

COMPILE_PIPELINE = CANONICAL_PIPELINE


def write_bytes_atomic(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def save_npz_atomic(path, arrays: Mapping[str, np.ndarray]) -> None:
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def load_npz(path) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise SpecccError("no such file", location=str(path))
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise SpecccError(f"not a .npz file ({e})", location=str(path)) from None


def load_any(path, shapes_only: bool = False) -> Module:
    """An .onnx model or an .ir text file as a module."""
    from speccc.frontend.onnx_import import ImportOptions, import_model
    from speccc.ir.parser import parse_file
    if str(path).endswith(".ir"):
        return parse_file(path)
    return import_model(path, ImportOptions(shapes_only=shapes_only))


def _bind_pipeline(pipeline: str, bindings: Mapping[str, int]) -> str:
    if not bindings:
        return pipeline
    spec = ":".join(f"{k}={v}" for k, v in bindings.items())
    return f"fold{{bind={spec}}}," + pipeline


def opt_file(path, pipeline: str, **pm_kwargs) -> tuple[str, PassManager]:
    from speccc.ir.parser import parse_file
    from speccc.ir.printer import print_module
    pm = PassManager.parse(pipeline, **pm_kwargs)  # bad pipelines fail before reading
    module = parse_file(path)
    pm.run(module)
    return print_module(module), pm


def exec_model(model_path, inputs_path, bindings: Mapping[str, int], pipeline: str | None,
               **pm_kwargs) -> tuple[dict[str, np.ndarray], PassManager]:
    from speccc.frontend.onnx_import import sanitize_name
    from speccc.ir.interpreter import run_graph
    pm = PassManager.parse(_bind_pipeline(pipeline or CANONICAL_PIPELINE, bindings),
                           **pm_kwargs)
    feeds = load_npz(inputs_path)
    module = load_any(model_path)
    pm.run(module)
    graph = next(iter(module))
    known = {a.result.name for a in graph.arguments}
    args = {sanitize_name(k): v for k, v in feeds.items()}
    extra = sorted(k for k in args if k not in known)
    if extra:
        raise SpecccError(f"--inputs has array(s) the model does not take: {', '.join(extra)}"
                          f" (inputs: {', '.join(sorted(known))})", location=str(inputs_path))
    return run_graph(graph, args, bindings), pm


def unbound_symbols(module: Module) -> set[str]:
    out: set[str] = set()
    for g in module:
        for a in g.arguments:
            out |= a.result.type.symbols
        for op in g.ops():
            for r in op.results:
                out |= r.type.symbols
    return out


def compile_model(model_path, outdir, bindings: Mapping[str, int], pipeline: str | None,
                  shapes_only: bool, **pm_kwargs) -> tuple[dict, PassManager]:
    from speccc.ir.opdefs import op_cost
    from speccc.ir.printer import print_graph
    pm = PassManager.parse(_bind_pipeline(pipeline or COMPILE_PIPELINE, bindings),
                           **pm_kwargs)
    module = load_any(model_path, shapes_only=shapes_only)
    pm.run(module)
    free = unbound_symbols(module)
    if free:
        names = ", ".join(sorted(free))
        example = ",".join(f"{s}=1" for s in sorted(free))
        raise SpecccError(f"unbound symbolic dim(s) {names}: costs need numbers; "
                          f"pass --bind {example}", location=str(model_path))
    report = {"model": str(model_path), "bindings": dict(bindings),
              "pipeline": [s for s, _ in pm.timings], "graphs": {}}
    summary: dict[str, Counter] = defaultdict(Counter)
    for g in module:
        rows = []
        for op in g.ops():
            c = op_cost(op)
            rows.append({"op": op.name, "loc": op.loc, "flops": int(c.flops),
                         "bytes_read": int(c.bytes_read), "bytes_written": int(c.bytes_written)})
            s = summary[op.name]
            s["count"] += 1
            s["flops"] += int(c.flops)
            s["bytes_read"] += int(c.bytes_read)
            s["bytes_written"] += int(c.bytes_written)
        report["graphs"][g.name] = {"ops": rows, "kv_cache": g.attrs.get("kv_cache", [])}
    report["summary"] = [{"op": k, **v} for k, v in sorted(summary.items(),
                                                           key=lambda kv: -kv[1]["flops"])]
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise SpecccError("output exists and is not a directory", location=str(out))
    for g in module:
        write_text_atomic(out / "ir" / f"{g.name}.ir", print_graph(g))
    write_text_atomic(out / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report, pm
