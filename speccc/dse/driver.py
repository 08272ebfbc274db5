"""`speccc dse` below the terminal: build the study, sweep, confirm, write outputs.

    study = prepare("llama2-7b", "llama-68m", "aim-gddr6", None, "0.8", None, [1], ...)
    summary = run(study, "out/", "grid", "latency", "local", 2, None, 256, {}, 6, 4)
"""
from __future__ import annotations

import time

from speccc.dse import search
from speccc.dse.evaluate import OBJECTIVES, Study
from speccc.dse.executors import open_executor
from speccc.dse.hwfile import variant_text
from speccc.dse.report import baseline_ids, write_outputs
from speccc.dse.space import load_space
from speccc.dse.sweep import PointStore, confirm as confirm_points, run_sweep
from speccc.errors import SpecccError


def alphas_from_trace(outcomes) -> list[float]:
    """Per-position acceptance α_i = P(token i accepted | tokens < i accepted), from
    recorded (candidates, accepted) verifies."""
    out = []
    for i in range(1, max((m for m, _ in outcomes), default=0) + 1):
        reach = [k for m, k in outcomes if m >= i and k >= i - 1]
        if not reach:
            break
        out.append(sum(1 for k in reach if k >= i) / len(reach))
    if not out:
        raise SpecccError("the acceptance trace has no verify with draft candidates")
    return out


def prepare(target, draft, hw, space_path, acceptance, trace_path, batch, prompt_len,
            max_new_tokens, seed, cost_model) -> Study:
    from speccc.runtime.acceptance import load_trace, parse_alphas
    from speccc.zoo.resolve import resolve
    for model in (target, draft):   # a bad name fails before any sweep
        resolve(model)
    space = load_space(space_path, hw, {"batch": batch} if batch else None)
    work = space.workload
    if acceptance is not None and trace_path is not None:
        raise SpecccError("give --acceptance or --acceptance-trace, not both")
    trace = tuple(map(tuple, load_trace(trace_path))) if trace_path else None
    if trace:
        alphas = alphas_from_trace(trace)
    elif acceptance is not None:
        alphas = parse_alphas(acceptance)
    elif work.get("acceptance") is not None:
        a = work["acceptance"]
        alphas = parse_alphas(",".join(map(str, a if isinstance(a, list) else [a])))
    else:
        raise SpecccError("give --acceptance A (or --acceptance-trace, or [workload] "
                          "acceptance in the space file)")
    prompt_len = prompt_len or work["prompt_len"]
    max_new = max_new_tokens or work["max_new_tokens"]
    for name, v in (("--prompt-len", prompt_len), ("--max-new-tokens", max_new)):
        if not isinstance(v, int) or v < 1:
            raise SpecccError(f"{name} must be a positive integer, got {v!r}")
    return Study(target, draft, space, tuple(alphas), trace, prompt_len, max_new, seed,
                 cost_model, hw_texts(space))


def hw_texts(space) -> tuple:
    """((hw key, TOML text), ...) for every hardware × knob combination of the space."""
    texts = {}
    for h in space.values("hw"):
        knob_vals = [[]]
        for k in space.knobs:
            knob_vals = [kv + [(k, v)] for kv in knob_vals for v in space.values(k)]
        for kv in knob_vals:
            key = h + ("+" + ",".join(f"{k}={v}" for k, v in kv) if kv else "")
            texts[key] = variant_text(h, dict(kv))
    return tuple(sorted(texts.items()))


def run(study: Study, out_dir, strategy: str, objective: str, executor: str, jobs: int,
        address, chunk: int, search_opts: dict, n_confirm: int, n_random: int,
        progress=None) -> dict:
    metric = OBJECTIVES[objective]
    store = PointStore(out_dir, study)
    before = len(store.rows)
    gen = search.strategy(strategy)(study.space, objectives=[
        "itl_ms", "energy_per_token_mj"], seed=study.seed, **(
        search_opts if strategy == "nsga2" else {}))
    t0 = time.perf_counter()
    with open_executor(executor, jobs, address) as ex:
        rows = run_sweep(study, gen, ex, store, chunk, progress,
                         extra=lambda rs: baseline_ids(study.space, rs, metric))
        elapsed = time.perf_counter() - t0
        if not any(r["feasible"] for r in rows):
            note = next((r["note"] for r in rows if r["note"]), "")
            raise SpecccError(f"no point of the space is feasible: {note}")
        confirmed = confirm_points(study, ex, rows, n_confirm, n_random, study.seed) \
            if n_confirm or n_random else []
    out = write_outputs(out_dir, study, rows, metric, objective, confirmed, elapsed)
    errs = [max(c["rel_error"].values()) for c in confirmed if c["rel_error"]]
    evaluated = len(rows) - before
    return {"points": len(rows), "evaluated": evaluated,
            "points_per_s": evaluated / elapsed if elapsed > 0 else 0.0,
            "sweep_s": elapsed, "front": len(out["front"]), "best": out["best"],
            "confirmed": len(confirmed),
            "max_confirm_error": max(errs) if errs else None}


__all__ = ["prepare", "run", "alphas_from_trace", "variant_text", "hw_texts"]
