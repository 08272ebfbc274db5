"""What the CLI commands do, without the terminal: returns values, raises typed errors.

Every output file is written atomically (temp file + rename) and only after all work
succeeded, so a failing command never leaves a partial or clobbered `-o`.
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np

from speccc.errors import SpecccError
from speccc.fileio import write_bytes_atomic, write_text_atomic, write_tree  # noqa: F401
from speccc.npzio import load_npz, npz_headers, save_npz_atomic  # noqa: F401
from speccc.ir.core import Module
from speccc.passmanager import PassManager
from speccc.pipeline import CANONICAL_PIPELINE

COMPILE_PIPELINE = CANONICAL_PIPELINE


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


# Symbolic dims count tokens/requests: at least 1, except the past length P (an empty KV
# cache is P=0); at most 2^20, beyond any model's context. T=0 crashed the reference
# (an empty max) and the emulator (nothing to concatenate).
BIND_MIN = {"P": 0}
BIND_MAX = 1 << 20


def check_bindings(bindings: Mapping[str, int], what: str = "--bind",
                   location: str | None = None) -> None:
    for k, v in bindings.items():
        lo = BIND_MIN.get(k, 1)
        if not lo <= v <= BIND_MAX:
            raise SpecccError(f"{what} {k} must be in [{lo}, {BIND_MAX}], got {v}",
                              location=location)


DEFAULT_HW = "hbm-pim"
PRECISIONS = {"fp32": "fp32", "fp16": "device"}  # --precision -> emulator mode


def exec_model(model_path, inputs_path, bindings: Mapping[str, int], pipeline: str | None,
               *, backend: str = "reference", hw: str | None = None, precision: str = "fp32",
               max_context: int = 0, **pm_kwargs) -> tuple[dict[str, np.ndarray], PassManager]:
    """Run a model on inputs. backend "reference": the op table's numpy semantics;
    "emulator": PIM-assigned ops (speccc.costmodel.default_device) are placed, lowered by
    targets/pim/codegen and executed by the functional PIM emulator (precision fp32: the
    fp32 oracle; fp16: the preset's 16-bit formats), everything else by the reference
    interpreter (speccc.ir.interpreter.Plan with per-op overrides)."""
    from speccc.frontend.onnx_import import onnx_name, sanitize_name
    from speccc.ir.interpreter import Plan, bind_inputs
    if backend not in ("reference", "emulator"):
        raise SpecccError(f"unknown backend {backend!r} (reference or emulator)")
    if precision not in PRECISIONS:
        raise SpecccError(f"unknown precision {precision!r} ({' or '.join(PRECISIONS)})")
    hwc = _load_hw(hw) if backend == "emulator" else None
    pm = PassManager.parse(_bind_pipeline(pipeline or CANONICAL_PIPELINE, bindings),
                           **pm_kwargs)
    module = load_any(model_path)
    graph = next(iter(module))
    known = {a.result.name for a in graph.arguments}
    heads = {sanitize_name(k): v for k, v in npz_headers(inputs_path).items()}
    extra = sorted(onnx_name(k) for k in heads if k not in known)
    if extra:
        raise SpecccError(f"--inputs has array(s) the model does not take: {', '.join(extra)}"
                          f" (inputs: {', '.join(sorted(map(onnx_name, known)))})",
                          location=str(inputs_path))
    # shapes and dtypes checked on zero-stride stand-ins: nothing is read yet
    env = bind_inputs(graph, {k: np.broadcast_to(np.zeros((), dt), shape)
                              for k, (shape, dt) in heads.items()}, bindings)
    check_bindings(env, "symbolic dim", location=str(inputs_path))
    args = {sanitize_name(k): v for k, v in load_npz(inputs_path).items()}
    if hwc is not None:
        env = bind_inputs(graph, args, bindings)
        _add_place(pm, hw or DEFAULT_HW, env, max_context)
    pm.run(module)
    graph = next(iter(module))
    overrides = emulator_overrides(graph, hwc, PRECISIONS[precision]) if hwc else None
    return Plan(graph, overrides).run(args, bindings), pm


def _load_hw(hw: str | None):
    from speccc.hw import load_hw
    return load_hw(hw or DEFAULT_HW)


def _add_place(pm: PassManager, hw: str, bindings: Mapping[str, int], max_context: int,
               partition: str | None = None, split: str = "") -> list:
    """Make the pipeline end with `place` for this hardware and binding (a `place` the
    user put in the pipeline gets the same hw/bind unless it names another preset).
    With `partition` (a policy or a mapping name), `partition{...,hw}` goes before it, so
    devices come from the cost model instead of the GEMV-to-PIM default. Returns the
    passes it appended (none when the pipeline already had a `place`)."""
    from speccc.passes.partition import Partition
    from speccc.passes.place import Place
    bind = [f"{k}={v}" for k, v in sorted(bindings.items())]
    places = [p for p in pm.passes if isinstance(p, Place)]
    if not places:
        if partition:
            from speccc.passes.partition import MAPPINGS
            how = {"mapping": partition} if partition in MAPPINGS else {"policy": partition}
            pm.passes.append(Partition(hw=hw, bind=bind, **how))
        pm.passes.append(Place(hw=hw, bind=bind, max_context=max_context, split=split))
        return pm.passes[-2 if partition else -1:]
    for p in places:
        if p.hw not in (Place.hw, hw):
            raise SpecccError(f"pipeline has place{{hw={p.hw}}} but --hw is {hw}")
        p.hw = hw
        p.bind = p.bind or bind
        p.max_context = p.max_context or max_context
        p.split = p.split or split
    return []


def emulator_overrides(graph, hw, mode: str) -> dict:
    """{op: fn(inputs, attrs) -> outputs} running every PIM op of `graph` through its
    codegen kernel on one shared emulator (the whole model's placement is loaded into
    one device; weights are laid out on an op's first call)."""
    from speccc.costmodel import default_device
    from speccc.targets.pim.codegen import kernel_for
    from speccc.targets.pim.emulator import PimEmulator
    emu = PimEmulator(hw, mode=mode)
    loaded: set = set()
    kernels: dict = {}
    out = {}
    number = 0
    for op in graph.ops():
        i, number = number, number + len(op.results)
        if default_device(op) != "pim":
            continue

        def fn(ins, attrs, op=op, label=f"{graph.name}.{i:04d}.{op.name}"):
            shapes = tuple(tuple(np.shape(a)) for a in ins)
            k = kernels.get((id(op), shapes))
            if k is None:
                k = kernels[id(op), shapes] = kernel_for(op.name, op.attrs, hw, list(shapes),
                                                         label=label)
            outs = k.run(emu, list(ins), load=id(op) not in loaded)
            loaded.add(id(op))
            return outs
        out[op] = fn
    return out


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
                  shapes_only: bool, *, hw: str | None = None, max_context: int = 0,
                  partition: str | None = None, draft=None,
                  draft_channels: int | None = None,
                  **pm_kwargs) -> tuple[dict, PassManager]:
    """Import, run the pipeline (canonical + place), lower every PIM op to listings and
    time them on the emulator; write OUTDIR/ir/*.ir, OUTDIR/pim/*.pim and
    OUTDIR/report.json (byte-deterministic). Nothing is written unless all succeeds.

    With `draft` (an .onnx model) it is imported as graph @draft next to @target and goes
    through the same pipeline; `draft_channels=N` places it on PIM channels [0, N) and
    the target on the rest (`place{split=draft:N}`, SpecPIM), else both share them."""
    from speccc.ir.printer import print_graph
    from speccc.targets.pim.listing import format_program
    if draft_channels is not None and draft is None:
        raise SpecccError("--draft-channels needs a --draft model")
    if draft is not None and str(draft).endswith(".ir"):
        raise SpecccError("--draft takes an .onnx model", location=str(draft))
    hwc = _load_hw(hw)
    pm = PassManager.parse(_bind_pipeline(pipeline or COMPILE_PIPELINE, bindings),
                           **pm_kwargs)
    split = f"draft:{draft_channels}" if draft_channels is not None else ""
    tail_passes = _add_place(pm, hw or DEFAULT_HW, bindings, max_context,
                             partition=partition, split=split)
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise SpecccError("output exists and is not a directory", location=str(out))
    module = load_any(model_path, shapes_only=shapes_only)
    if draft is not None:
        from speccc.frontend.onnx_import import ImportOptions, import_model
        if "draft" in {g.name for g in module}:
            raise SpecccError("the model already has a graph @draft", location=str(model_path))
        import_model(draft, ImportOptions(shapes_only=shapes_only, graph_name="draft"),
                     module=module)
    # the pipeline up to the appended partition/place, the bindings check, then those
    del pm.passes[len(pm.passes) - len(tail_passes):]
    pm.run(module)
    free = unbound_symbols(module)
    if free:
        names = ", ".join(sorted(free))
        example = ",".join(f"{s}=1" for s in sorted(free))
        raise SpecccError(f"unbound symbolic dim(s) {names}: costs need numbers; "
                          f"pass --bind {example}", location=str(model_path))
    if tail_passes:
        tail = dataclasses.replace(pm, passes=tail_passes, timings=[])
        tail.run(module)
        pm.passes += tail_passes
        pm.timings += tail.timings
    report, listings = lower_module(module, hwc, bindings)
    report = {"model": str(model_path), "bindings": dict(bindings),
              "pipeline": [s for s, _ in pm.timings], **report}
    if draft is not None:
        report["draft"] = str(draft)
        report["draft_channels"] = draft_channels
    from speccc.passes.partition import partition_report
    parts = {g.name: partition_report(g) for g in module if g.attrs.get("partition")}
    if parts:
        report["partition"] = parts
    files: dict[str, str] = {}
    for g in module:
        from speccc.targets.npu.program import npu_listings
        files[f"ir/{g.name}.ir"] = print_graph(g)
        files.update(npu_listings(g, hwc, bindings))
    for rel, prog in listings:
        files[rel] = format_program(prog)
    files["report.json"] = json.dumps(report, indent=1, sort_keys=True) + "\n"
    write_tree(out, files, prune=("pim/*.pim",))
    return report, pm


def lower_module(module: Module, hw, bindings: Mapping[str, int]) -> tuple[dict, list]:
    """Per-op device, timing, bytes, energy, roofline and efficiency; the listings.

    PIM ops: every phase's listing is timed by the emulator (time_program; programs
    equal up to row numbers and channel offsets are timed once). NPU ops: the cost
    model's estimator (speccc.costmodel.CostModel). Host ops (views, shape math, KV
    appends): free. The step time `serial_ns` adds every op's time (no overlap)."""
    from speccc import costmodel
    from speccc.ir.opdefs import op_cost
    from speccc.ir.types import dim_eval
    from speccc.targets.pim.codegen import (Timer, kernel_for, normalized_attrs, program_io,
                                            roofline)
    model = costmodel.CostModel(hw)
    rooflines = getattr(costmodel, "ROOFLINE", costmodel.ESTIMATORS)
    timer = Timer(hw)
    npu_ghz = hw.npu.clock_mhz / 1000
    listings: list = []
    graphs: dict = {}
    summary: dict[tuple, Counter] = defaultdict(Counter)
    totals: dict[str, Counter] = defaultdict(Counter)
    for g in module:
        rows = []
        number = 0  # the printer's %N of the op's first result (listing names follow it)
        for op in g.ops():
            i, number = number, number + len(op.results)
            c = op_cost(op)
            device = costmodel.default_device(op)
            row = {"op": op.name, "id": i, "loc": op.loc, "device": device,
                   "flops": int(c.flops), "bytes_read": int(c.bytes_read),
                   "bytes_written": int(c.bytes_written)}
            if device == "pim":
                shapes = [[dim_eval(d, bindings) for d in v.type.shape] for v in op.operands]
                stem = f"pim/{g.name}.{i:04d}.{op.name}"
                kernel = kernel_for(op.name, op.attrs, hw, shapes, label=stem)
                twin = kernel_for(op.name, normalized_attrs(op.attrs), hw, shapes, label=stem)
                phases, tot = [], Counter()
                for (phase, prog), (_, tprog) in zip(kernel.phases(), twin.phases()):
                    res = timer.time(tprog)
                    b_in, b_out = program_io(prog, hw)
                    rel = f"{stem}.{phase}.pim"
                    listings.append((rel, prog))
                    ph = {"phase": phase, "listing": rel, "cycles": res.cycles, "ns": res.ns,
                          "bytes_in": b_in, "bytes_out": b_out,
                          "energy_pj": res.energy_total_pj, "commands": res.commands}
                    phases.append(ph)
                    tot.update({k: ph[k] for k in ("cycles", "ns", "bytes_in", "bytes_out",
                                                   "energy_pj")})
                roof_ns, bound = roofline(hw, kernel.work())
                row.update({"timing": "emulator", "cycles": tot["cycles"], "ns": tot["ns"],
                            "bytes_in": tot["bytes_in"], "bytes_out": tot["bytes_out"],
                            "energy_pj": tot["energy_pj"], "bound": bound,
                            "roofline_ns": roof_ns,
                            "efficiency": roof_ns / tot["ns"] if tot["ns"] else None,
                            "phases": phases})
                for k, v in op.attrs.items():
                    if k.startswith("pim_") and k != "pim_channels":
                        row[k] = v
                if "pim_channels" in op.attrs:
                    row["pim_channels"] = [op.attrs["pim_channels"][0],
                                           len(op.attrs["pim_channels"])]
            else:
                oc = model.op_cost(op, device, bindings)
                roof = rooflines.get(device)
                roof_ns = (roof(hw, op, bindings).latency_ns
                           if roof is not None and device != "host" else None)
                row.update({"timing": "roofline" if device == "npu" else "none",
                            "cycles": int(round(oc.latency_ns * npu_ghz)), "ns": oc.latency_ns,
                            "bytes_in": int(c.bytes_read) if device != "host" else 0,
                            "bytes_out": int(c.bytes_written) if device != "host" else 0,
                            "energy_pj": oc.energy_pj, "bound": oc.bound,
                            "roofline_ns": roof_ns,
                            "efficiency": (roof_ns / oc.latency_ns
                                           if roof_ns and oc.latency_ns else None)})
            rows.append(row)
            s = summary[(op.name, device)]
            s["count"] += 1
            for k in ("flops", "bytes_read", "bytes_written", "ns", "energy_pj", "bytes_in",
                      "bytes_out"):
                s[k] += row[k]
            if row.get("roofline_ns"):
                s["roofline_ns"] += row["roofline_ns"]
            t = totals[device]
            t["ops"] += 1
            for k in ("ns", "energy_pj", "bytes_in", "bytes_out"):
                t[k] += row[k]
        graphs[g.name] = {"ops": rows, "kv_cache": g.attrs.get("kv_cache", [])}
    summ = []
    for (name, device), v in sorted(summary.items(), key=lambda kv: (-kv[1]["ns"],
                                                                      -kv[1]["flops"], kv[0])):
        d = {"op": name, "device": device, **v}
        d["efficiency"] = (v["roofline_ns"] / v["ns"]) if v.get("roofline_ns") and v["ns"] else None
        summ.append(d)
    tot = {dev: dict(v) for dev, v in sorted(totals.items())}
    serial = sum(v["ns"] for v in totals.values())
    return ({"hw": hw.name, "graphs": graphs, "summary": summ, "totals": tot,
             "serial_ns": serial, "listings": len(listings),
             "timed_programs": len(timer.cache)}, listings)
