"""What the CLI commands do, without the terminal: returns values, raises typed errors.

Every output file is written atomically (temp file + rename) and only after all work
succeeded, so a failing command never leaves a partial or clobbered `-o`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

import numpy as np

from speccc.emulation import emulator_overrides
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
    """Run a pipeline over IR text (or an imported .onnx model); the IR text after."""
    from speccc.frontend.onnx_import import import_model
    from speccc.ir.parser import parse_file
    from speccc.ir.printer import print_module
    pm = PassManager.parse(pipeline, **pm_kwargs)  # bad pipelines fail before reading
    module = import_model(path) if str(path).endswith(".onnx") else parse_file(path)
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
               max_context: int = 0, timings: list | None = None, on_pim_op=None,
               **pm_kwargs) -> tuple[dict[str, np.ndarray], PassManager]:
    """Run a model on inputs. backend "reference": the op table's numpy semantics;
    "emulator": PIM-assigned ops (speccc.costmodel.default_device) are placed, lowered by
    targets/pim/codegen and executed by the functional PIM emulator (precision fp32: the
    fp32 oracle; fp16: the preset's 16-bit formats), everything else by the reference
    interpreter (speccc.ir.interpreter.Plan with per-op overrides). The emulator computes
    values only, unless `timings` is a list: then every PIM listing is also timed and
    (listing name, PimResult) appended to it."""
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
    overrides = emulator_overrides(graph, hwc, PRECISIONS[precision], timings) if hwc else None
    if overrides and on_pim_op:     # fn(PIM ops run, PIM ops): progress bars
        overrides = _counted(overrides, on_pim_op)
    return Plan(graph, overrides).run(args, bindings), pm


def _counted(overrides: dict, report) -> dict:
    done = [0]

    def wrap(fn):
        def run(ins, attrs):
            out = fn(ins, attrs)
            done[0] += 1
            report(done[0], len(overrides))
            return out
        return run
    return {op: wrap(fn) for op, fn in overrides.items()}


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


def unbound_symbols(module: Module) -> set[str]:
    out: set[str] = set()
    for g in module:
        for a in g.arguments:
            out |= a.result.type.symbols
        for op in g.ops():
            for r in op.results:
                out |= r.type.symbols
    return out


def compile_pipeline(pipeline: str | None, bindings: Mapping[str, int], *,
                     hw: str | None = None, max_context: int = 0, partition: str | None = None,
                     draft_channels: int | None = None, **pm_kwargs
                     ) -> tuple[PassManager, list]:
    """The whole compile as one pass manager: `fold{bind}` + the pipeline (default: the
    canonical one) + [partition] + place + lower-pim + lower-npu. Returns it and the
    passes appended to the user's pipeline (run after the bindings check)."""
    from speccc.passes.lower_npu import LowerNpu
    from speccc.passes.lower_pim import LowerPim
    pm = PassManager.parse(_bind_pipeline(pipeline or COMPILE_PIPELINE, bindings), **pm_kwargs)
    split = f"draft:{draft_channels}" if draft_channels is not None else ""
    name = hw or DEFAULT_HW
    tail = _add_place(pm, name, bindings, max_context, partition=partition, split=split)
    bind = [f"{k}={v}" for k, v in sorted(bindings.items())]
    lowering = [cls(hw=name, bind=bind) for cls in (LowerPim, LowerNpu)
                if not any(isinstance(p, cls) for p in pm.passes)]
    pm.passes += lowering
    return pm, tail + lowering


def schedule_module(target, draft, shapes_only: bool, *, hw: str, bindings, partition,
                    schedule: str, gamma: int, draft_channels: int) -> str:
    """The text of the module `speccc run --module` runs: @target and @draft after the
    canonical pipeline with their dims symbolic (the runtime prices every (T, P) a
    schedule reaches; compile's bound, lowered graphs cannot), the partition's devices,
    and the `speculate` pass's @schedule program."""
    from speccc.ir.printer import print_module
    from speccc.runtime.runner import load_pair
    module, meta = load_pair(target, draft, shapes_only=shapes_only)
    for name, props in meta.items():
        from speccc import modelinfo
        ctx = modelinfo.max_context(module.graphs[name], props)
        if ctx is not None:   # keep the context limit the ONNX metadata gave
            module.graphs[name].attrs["max_context"] = ctx
    passes = []
    if partition:
        from speccc.passes.partition import MAPPINGS
        how = "mapping" if partition in MAPPINGS else "policy"
        bind = ":".join(f"{k}={v}" for k, v in sorted(bindings.items()))
        passes.append(f"partition{{{how}={partition},hw={hw}"
                      + (f",bind={bind}" if bind else "") + "}")
    passes.append(f"speculate{{schedule={schedule},gamma={gamma},hw={hw},"
                  f"draft_channels={draft_channels}}}")
    PassManager.parse(",".join(passes)).run(module)
    return print_module(module)


def pipeline_text(pm: PassManager) -> str:
    """The pipeline string `speccc opt -p` takes for these passes."""
    return ",".join(p.spec() for p in pm.passes)


def compile_model(model_path, outdir, bindings: Mapping[str, int], pipeline: str | None,
                  shapes_only: bool, *, hw: str | None = None, max_context: int = 0,
                  partition: str | None = None, draft=None,
                  draft_channels: int | None = None, schedule: str = "serial",
                  gamma: int = 4, **pm_kwargs) -> tuple[dict, PassManager]:
    """Import, run the compile pipeline (`compile_pipeline`: canonical + place + lower-pim
    + lower-npu), build the report from the lowered module and write OUTDIR/ir/*.ir (the
    lowered IR), the listings (OUTDIR/pim/*.pim, OUTDIR/npu/GRAPH/*) and
    OUTDIR/report.json (byte-deterministic). Nothing is written unless all succeeds.

    With `draft` (an .onnx model) it is imported as graph @draft next to @target and goes
    through the same pipeline; `draft_channels=N` places it on PIM channels [0, N) and
    the target on the rest (`place{split=draft:N}`, SpecPIM), else both share them; and
    OUTDIR/ir/module.ir holds @draft, @target and the `schedule` program (`gamma`) as
    `speccc run --module` runs them (`schedule_module`)."""
    from speccc.ir.printer import print_graph
    from speccc.passes._lower import LowerPass
    from speccc.report import compile_report
    if draft_channels is not None and draft is None:
        raise SpecccError("--draft-channels needs a --draft model")
    if draft is not None and str(draft).endswith(".ir"):
        raise SpecccError("--draft takes an .onnx model", location=str(draft))
    if draft is not None and schedule in ("overlap", "pipeinfer") and draft_channels is None:
        raise SpecccError(f"--schedule {schedule} runs the draft on its own PIM channels: "
                          "give --draft-channels N")
    _load_hw(hw)   # a bad --hw is reported before any model work
    pm, tail_passes = compile_pipeline(pipeline, bindings, hw=hw, max_context=max_context,
                                       partition=partition, draft_channels=draft_channels,
                                       **pm_kwargs)
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
    # the pipeline up to the appended passes, the bindings check, then those
    n_all, on_pass = len(pm.passes), pm.on_pass
    del pm.passes[len(pm.passes) - len(tail_passes):]
    n_head = len(pm.passes)
    if on_pass:     # one count over both parts (progress bars)
        pm.on_pass = lambda i, n, name: on_pass(i, n_all, name)
    pm.run(module)
    free = unbound_symbols(module)
    if free:
        names = ", ".join(sorted(free))
        example = ",".join(f"{s}=1" for s in sorted(free))
        raise SpecccError(f"unbound symbolic dim(s) {names}: costs need numbers; "
                          f"pass --bind {example}", location=str(model_path))
    tail = dataclasses.replace(pm, passes=tail_passes, timings=[], on_pass=on_pass and (
        lambda i, n, name: on_pass(n_head + i, n_all, name)))
    tail.run(module)
    pm.passes += tail_passes
    pm.on_pass = on_pass
    if on_pass:
        on_pass(n_all, n_all, "write")
    pm.timings += tail.timings
    first_lowering = next(i for i, p in enumerate(pm.passes) if isinstance(p, LowerPass))
    specs = [s for s, _ in pm.timings]
    report = {"model": str(model_path), "bindings": dict(bindings),
              "pipeline": specs[:first_lowering], "lowering": specs[first_lowering:],
              **compile_report(module)}
    if draft is not None:
        report["draft"] = str(draft)
        report["draft_channels"] = draft_channels
    from speccc.passes.partition import partition_report
    parts = {g.name: partition_report(g) for g in module if g.attrs.get("partition")}
    if parts:
        report["partition"] = parts
    files = {f"ir/{g.name}.ir": print_graph(g) for g in module}
    if draft is not None:
        files["ir/module.ir"] = schedule_module(
            model_path, draft, shapes_only, hw=hw or DEFAULT_HW, bindings=bindings,
            partition=partition, schedule=schedule, gamma=gamma,
            draft_channels=draft_channels or 0)
    files.update(module.listings)
    files["report.json"] = json.dumps(report, indent=1, sort_keys=True) + "\n"
    write_tree(out, files, prune=("pim/*.pim",))
    return report, pm
