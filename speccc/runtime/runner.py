"""Load a draft/target pair, and run a module's @schedule to a report.

    module, meta = load_pair("target.onnx", "draft.onnx")
    PassManager.parse("speculate{schedule=serial,gamma=4}").run(module)
    report, engine = simulate(module, RunConfig(max_new_tokens=32, prompt=[1, 2, 3]),
                              meta)

Context length (prompt + max_new_tokens must fit): RunConfig.max_context, else the
smaller of the two models' position tables (a table gathered by position_ids, minus the
offset added to the ids), else the `speccc.spec` metadata zoo models carry, else
unlimited (rotary embeddings computed on the fly have no table).
"""
from __future__ import annotations

from dataclasses import dataclass

from speccc.errors import SpecccError
from speccc import modelinfo
from speccc.runtime.graph_memo import memo
from speccc.runtime.program import GRAPH, Program


@dataclass
class RunConfig:
    max_new_tokens: int = 32
    prompt: list | None = None       # token ids (default: 1..prompt_len)
    prompts: list | None = None      # one prompt per request (batch); else `prompt` for all
    prompt_len: int = 8
    acceptance: float | list | None = None   # synthetic acceptance: alpha, or alpha_i per
                                             # position in a block (no functional run)
    acceptance_trace: list | None = None     # or replay recorded (candidates, accepted)
    seed: int = 0
    temperature: float = 0.0
    granularity: str = "op"          # op | stage (one task per pipeline stage: faster)
    cost_model: object = "targets"   # targets | targets-fast | roofline | {device: estimator}
    max_context: int | None = None
    numerics: str = "reference"      # reference (fp32) | device (PIM ops in the preset's
                                     # MAC precision, through the emulator)
    progress: object = None          # fn(tokens generated, tokens to generate): bars


def load_pair(target, draft=None, shapes_only: bool = False):
    """(module with @target [and @draft] after the canonical pipeline, ONNX metadata).
    Models are files or zoo names (speccc.zoo.resolve)."""
    from speccc.frontend.onnx_import import ImportOptions, import_model
    from speccc.pipeline import run_canonical
    from speccc.zoo.resolve import ZooModel, load_proto, resolve
    module, meta = None, {}
    for name, path in (("target", target), ("draft", draft)):
        if path is None:
            continue
        path = resolve(path)
        model, _, _ = load_proto(path)
        meta[name] = {p.key: p.value for p in model.metadata_props}
        missing = path.shapes_only if isinstance(path, ZooModel) else _data_missing(model,
                                                                                    path)
        module = import_model(path, ImportOptions(
            graph_name=name, shapes_only=shapes_only or missing), module=module)
    run_canonical(module)
    return module, meta


def _data_missing(model, path) -> bool:
    """External weight data that is not there (shapes-only models): import as such."""
    from pathlib import Path
    base = Path(path).parent
    for t in model.graph.initializer:
        if t.data_location == t.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            if not (base / loc).is_file():
                return True
    return False


def context_limit(module, sched, meta: dict | None) -> int | None:
    limits = []
    for name in (sched.target, sched.draft) if sched.speculative else (sched.target,):
        n = modelinfo.max_context(module.graphs[name], (meta or {}).get(name))
        if n is not None:
            limits.append(n)
    return min(limits) if limits else None


def _check(cfg: RunConfig, module, sched, meta):
    if cfg.max_new_tokens < 1:
        raise SpecccError(f"--max-new-tokens must be >= 1, got {cfg.max_new_tokens}")
    if cfg.acceptance is not None and not all(0.0 <= a <= 1.0 for a in _alphas(cfg)):
        raise SpecccError(f"--acceptance must be in [0, 1], got {cfg.acceptance}")
    if cfg.acceptance is not None and cfg.acceptance_trace is not None:
        raise SpecccError("give --acceptance or --acceptance-trace, not both")
    if cfg.temperature < 0:
        raise SpecccError(f"--temperature must be >= 0, got {cfg.temperature}")
    if cfg.granularity not in ("op", "stage"):
        raise SpecccError(f"granularity must be op or stage, got {cfg.granularity!r}")
    if cfg.numerics not in NUMERICS:
        raise SpecccError(f"numerics must be {' or '.join(NUMERICS)}, got {cfg.numerics!r}")
    from speccc.runtime.costs import COST_MODELS
    if not isinstance(cfg.cost_model, dict) and cfg.cost_model not in COST_MODELS:
        raise SpecccError(f"cost model must be {', '.join(COST_MODELS)}, got "
                          f"{cfg.cost_model!r}")
    synthetic = _synthetic(cfg)
    if synthetic and cfg.numerics != "reference":
        raise SpecccError("--numerics device needs functional models (weights), not "
                          "--acceptance")
    if synthetic and cfg.temperature > 0:
        raise SpecccError("--temperature needs functional models; --acceptance drives a "
                          "synthetic acceptance process instead")
    names = [sched.target, sched.draft] if sched.speculative else [sched.target]
    if not synthetic:
        empty = [n for n in names if not module.weights_of(n).names()]
        if empty:
            raise SpecccError(f"@{empty[0]} has no weight data (shapes-only model): pass "
                              "--acceptance A to drive a synthetic acceptance process")
    vocab = modelinfo.vocab(module.graphs[sched.target])
    prompts = [list(p) for p in cfg.prompts] if cfg.prompts is not None else [
        list(cfg.prompt) if cfg.prompt is not None else
        [1 + i % (vocab - 1) for i in range(cfg.prompt_len)]] * sched.batch
    if synthetic and len({len(p) for p in prompts}) > 1:
        raise SpecccError("--acceptance runs synthetic requests of one prompt length")
    if len(prompts) != sched.batch:
        raise SpecccError(f"{len(prompts)} prompts for a batch of {sched.batch} requests")
    ctx = cfg.max_context if cfg.max_context is not None else context_limit(module, sched,
                                                                             meta)
    for prompt in prompts:
        _check_prompt(prompt, vocab, ctx, cfg.max_new_tokens)
    return prompts, ctx, vocab


NUMERICS = ("reference", "device")


def device_numerics(module, program, hw, context: int) -> dict:
    """graph name -> Plan overrides running its PIM ops through the PIM emulator's
    functional model in the preset's MAC precision. The weights and KV are placed as
    `compile` places them (the draft on its own channels when the program splits them),
    for `context` positions."""
    from speccc.emulation import emulator_overrides
    from speccc.passmanager import PassManager
    names = [program.target] + ([program.draft] if program.speculative else [])
    split = ""
    draft_on = program.on(program.draft) if program.speculative else []
    if draft_on and draft_on != program.on(program.target):
        split = f",split={program.draft}:{sum(len(program.groups[g]) for g in draft_on)}"
    from speccc.ir.core import Module
    models = Module()
    for name in names:            # place only the models (not the @schedule)
        models.graphs[name] = module.graphs[name]
    PassManager.parse(f"place{{hw={hw.source or hw.name},max_context={context}{split}}}"
                      ).run(models)
    return {name: emulator_overrides(module.graphs[name], hw, "device") for name in names}


def _synthetic(cfg: RunConfig) -> bool:
    return cfg.acceptance is not None or cfg.acceptance_trace is not None


def _alphas(cfg: RunConfig) -> list | None:
    a = cfg.acceptance
    return None if a is None else [float(x) for x in (a if isinstance(a, (list, tuple))
                                                      else [a])]


def _check_prompt(prompt, vocab: int, ctx: int | None, max_new: int) -> None:
    if not prompt:
        raise SpecccError("the prompt is empty: give --prompt-ids or --prompt-len >= 1")
    bad = [t for t in prompt if not 0 <= t < vocab]
    if bad:
        raise SpecccError(f"prompt token id {bad[0]} is outside the vocabulary [0, {vocab})")
    if ctx is not None and len(prompt) > ctx:
        raise SpecccError(f"prompt has {len(prompt)} tokens but the model's context is "
                          f"{ctx} positions")
    if ctx is not None and len(prompt) + max_new > ctx:
        raise SpecccError(f"prompt ({len(prompt)} tokens) + --max-new-tokens "
                          f"{max_new} exceeds the model's context of {ctx} positions")


def _costs(graph, hw, sched, stages, cfg):
    """ModelCosts of an unchanged graph are reused across runs (prices are memoized)."""
    from speccc.runtime.costs import ModelCosts
    cm = cfg.cost_model if isinstance(cfg.cost_model, str) else id(cfg.cost_model)
    key = ("costs", hw, tuple((k, tuple(v)) for k, v in sched.groups.items()), tuple(stages),
           sched.placement, sched.batch, cfg.granularity, cm,
           tuple(op.attrs.get("device") for op in graph.ops()))
    return memo(graph, key, lambda: ModelCosts(graph, hw, sched.groups, stages,
                                               sched.placement, sched.batch,
                                               cfg.granularity, cfg.cost_model))


def simulate(module, cfg: RunConfig, meta: dict | None = None):
    """Execute the module's @schedule program; returns (report dict, engine)."""
    from speccc.hw import load_hw
    from speccc.runtime.backend import FunctionalBackend, SyntheticBackend
    from speccc.runtime.engine import Engine
    from speccc.runtime.metrics import report
    from speccc.runtime.sampling import Decider
    from speccc.runtime.session import CANCELLED
    if GRAPH not in module.graphs:
        raise SpecccError("module has no @schedule: run the speculate pass first "
                          "(-p 'speculate{schedule=serial,gamma=4}')")
    program = Program.from_graph(module.graphs[GRAPH])
    for model in [program.target] + ([program.draft] if program.speculative else []):
        if model not in module.graphs:
            raise SpecccError(f"@{GRAPH} runs @{model} but the module has no such graph")
    prompts, ctx, vocab = _check(cfg, module, program, meta)
    hw = load_hw(program.hw, system=True)
    from speccc.runtime.capacity import check_fits
    longest = max(len(p) for p in prompts)
    check_fits(module, program, hw, longest + cfg.max_new_tokens, program.batch)
    costs = {"target": _costs(module.graphs[program.target], hw, program,
                              program.on(program.target), cfg)}
    if program.speculative:
        costs["draft"] = _costs(module.graphs[program.draft], hw, program,
                                program.on(program.draft), cfg)
    if _synthetic(cfg):
        from speccc.runtime.acceptance import acceptance_model
        model = acceptance_model(_alphas(cfg), cfg.acceptance_trace, cfg.seed)
        backend = SyntheticBackend(model, longest, len(prompts))
    else:
        # drafts and speculative drafts run up to 2*gamma + 1 positions past the tokens
        reach = longest + cfg.max_new_tokens + 2 * program.gamma + 1
        overrides = (device_numerics(module, program, hw, reach if ctx is None else
                                     min(reach, ctx))
                     if cfg.numerics == "device" else None)
        backend = FunctionalBackend(module, program, [Decider(cfg.temperature, cfg.seed, b)
                                                      for b in range(len(prompts))], overrides)
    engine = Engine(program.resources)
    logits_t = dict(zip(*[module.graphs[program.target].output_names,
                          module.graphs[program.target].outputs]))[
        modelinfo.logits_output(module.graphs[program.target])].type
    from speccc.runtime.machine import Machine
    from speccc.runtime.semantics import SEMANTICS
    machine = Machine(program, SEMANTICS, engine, backend, costs, hw, prompts,
                      cfg.max_new_tokens, ctx, logits_t.dtype.itemsize_bits // 8, vocab)
    machine.start()
    engine.run(until=_ticker(cfg.progress, machine) if cfg.progress else None)
    if cfg.progress:
        cfg.progress(*_generated(machine))
    machine.set_status(range(len(machine.drafted)), CANCELLED)  # drafted, never verified
    mode = "synthetic" if _synthetic(cfg) else "functional"
    extra = {"mode": mode, "acceptance": cfg.acceptance, "temperature": cfg.temperature,
             "numerics": cfg.numerics if not _synthetic(cfg) else None,
             "prompt_tokens": len(prompts[0]), "max_context": ctx, "placement": program.placement}
    return report(machine, engine, program, extra), engine


def _generated(machine) -> tuple[int, int]:
    """(tokens generated so far over all requests, tokens the run generates)."""
    return (sum(min(lane.generated, machine.max_new) for lane in machine.lanes),
            machine.batch * machine.max_new)


def _ticker(report, machine, every_s: float = 0.05):
    """An `Engine.run(until=...)` check that never stops the run and reports tokens
    generated at most every `every_s` seconds (a sum over the batch is not free)."""
    import time
    last = [0.0]

    def tick() -> bool:
        now = time.perf_counter()
        if now - last[0] >= every_s:
            last[0] = now
            report(*_generated(machine))
        return False
    return tick
