"""`speccc baseline`: the published comparison points of a draft/target pair, priced by the
same evaluator as `speccc dse` (dse/evaluate.py: the runtime's ModelCosts prices and the
schedules' closed forms), one row per baseline and system.

    rows = baseline_rows(target="llama2-7b", draft="llama-68m",
                         systems=["a100-80g", "hbm3-pim-spec"], spec=True, gamma=4,
                         alphas=(0.8,), batch=1)

A baseline is a mapping and a schedule on a system that has the devices it needs
(BASELINES, a table walked in order); a system without them gets no such row. Speedups
are against the first GPU AR row (else the first row).
"""
from __future__ import annotations

from dataclasses import dataclass

from speccc.errors import CapacityError, SpecccError


@dataclass(frozen=True)
class Baseline:
    key: str
    label: str
    needs: tuple          # devices the system must have: "gpu", "npu", "pim"
    mapping: str          # dse mapping (space.MAPPINGS)
    speculative: bool     # serial speculation with --spec; autoregressive otherwise
    disjoint: bool = False   # draft and target on disjoint PIM channel sets (SpecPIM)
    spec_only: bool = False  # a row that exists only with --spec


BASELINES = [
    Baseline("gpu-ar", "GPU autoregressive", ("gpu",), "all-gpu", False),
    Baseline("gpu-spec", "GPU speculative (serial)", ("gpu",), "all-gpu", True,
             spec_only=True),
    Baseline("attacc", "AttAcc-like (attention on PIM)", ("pim",), "attacc", True),
    Baseline("pim-only", "PIM-only", ("npu", "pim"), "all-pim", True),
    Baseline("npu-only", "NPU-only", ("npu", "pim"), "all-npu", True),
    Baseline("specpim", "SpecPIM mapping, disjoint channels", ("npu", "pim"), "specpim",
             True, disjoint=True),
]
BEST = Baseline("speccc-best", "speccc best schedule (dse sweep)", ("npu", "pim"), "auto",
                True)
# The sweep behind BEST: schedules x mappings x γ (the dse's evaluator, closed form).
BEST_SCHEDULES = ("none", "serial", "overlap")
BEST_MAPPINGS = ("auto", "specpim")
BEST_GAMMAS = tuple(range(1, 9))


def _has(hw, device: str) -> bool:
    return getattr(hw, device) is not None


def baseline_rows(target: str, draft: str, systems: list[str], spec: bool = True,
                  gamma: int = 4, alphas=(0.8,), batch: int = 1, prompt_len: int = 8,
                  max_new_tokens: int = 128, tp: int | None = None,
                  cost_model: str = "roofline", best: bool = True,
                  runtime: bool = False, seed: int = 0,
                  gammas: tuple | list | None = None) -> list[dict]:
    """One dict per (system, baseline): tokens/s, ms/token, mJ/token, speedup vs GPU AR,
    energy efficiency vs GPU AR (its mJ/token over this row's); infeasible rows carry
    the reason. Raises CapacityError when no row fits. `runtime`: each row on the
    discrete-event runtime (seeded acceptance draws) instead of the closed form.
    `gammas`: one speculative row per γ of them (instead of `gamma`) from one evaluator,
    whose cost tables every γ shares; autoregressive rows come once."""
    from speccc.dse.evaluate import Evaluator, Study
    from speccc.dse.hwfile import hw_text
    from speccc.dse.space import Space
    from speccc.hw import load_hw
    from speccc.hw.system import with_tp
    if not systems:
        raise SpecccError("baseline: name at least one --system")
    hws = {}
    for name in systems:
        hw = load_hw(name, system=True)
        hws[name] = with_tp(hw, tp) if tp else hw
    texts = tuple((name, _text(name, hw_text(name), tp)) for name in systems)
    plan = [(name, b) for name in systems for b in BASELINES
            if (spec or not b.spec_only) and all(_has(hws[name], d) for d in b.needs)]
    if best and spec:
        plan += [(name, BEST) for name in systems if all(_has(hws[name], d)
                                                         for d in BEST.needs)]
    if not plan:
        raise SpecccError("baseline: no baseline runs on " + ", ".join(systems)
                          + " (GPU rows need a GPU system, the rest PIM)")
    mappings = sorted({b.mapping for _, b in plan} | ({*BEST_MAPPINGS} if best else set()))
    per_row = tuple(gammas) if gammas else (gamma,)
    gammas = sorted({*per_row, *(BEST_GAMMAS if best else ())})
    space = Space((("hw", tuple(systems)), ("batch", (batch,)), ("mapping", tuple(mappings)),
                   ("draft_channels", (0,)), ("schedule", BEST_SCHEDULES),
                   ("gamma", tuple(gammas))))
    study = Study(target, draft, space, tuple(alphas), prompt_len=prompt_len,
                  max_new_tokens=max_new_tokens, cost_model=cost_model, hw_texts=texts,
                  seed=seed)
    ev = Evaluator(study)
    rows = []
    for name, b in plan:
        hw = ev.hws[name]
        if b is BEST:
            r = _best(ev, study, name, batch)
            if runtime and r["feasible"]:   # the sweep's winner, re-run on the runtime
                r = _eval(ev, study, {"hw": name, "batch": batch, **{
                    k: r[k] for k in ("mapping", "draft_channels", "schedule", "gamma")}},
                    False, runtime)
            rows.append({"system": name, "baseline": b.key, "label": b.label,
                         "xpus": hw.system.xpus, **r})
            continue
        schedule = "serial" if (b.speculative and spec) else "none"
        for g in per_row if schedule != "none" else per_row[:1]:
            point = {"hw": name, "batch": batch, "mapping": b.mapping, "draft_channels": 0,
                     "schedule": schedule, "gamma": g}
            r = _eval(ev, study, point, b.disjoint and schedule != "none", runtime)
            rows.append({"system": name, "baseline": b.key, "label": b.label,
                         "xpus": hw.system.xpus, **r})
    ok = [r for r in rows if r["feasible"]]
    if not ok:
        raise CapacityError("baseline: nothing fits: " + "; ".join(
            dict.fromkeys(r["note"] for r in rows)))
    ref = next((r for r in ok if r["baseline"] == "gpu-ar"), ok[0])
    for r in rows:
        r["reference"] = f"{ref['system']} {ref['baseline']}"
        if r["feasible"]:
            r["speedup"] = ref["itl_ms"] / r["itl_ms"]
            r["energy_efficiency"] = ref["energy_per_token_mj"] / r["energy_per_token_mj"]
    return rows


def _eval(ev, study, point: dict, disjoint: bool, runtime: bool = False) -> dict:
    """The point's closed-form metrics (`runtime`: the discrete-event runtime's); with
    `disjoint`, the draft on its own channels (the weight-proportional split the
    speculate pass makes)."""
    from dataclasses import replace

    from speccc.dse.evaluate import preset_split
    from speccc.dse.space import Space
    hw = ev.hws[point["hw"]]
    if disjoint and not preset_split(hw):   # a preset's draft/target groups split it already
        point = {**point, "draft_channels": ev.auto_draft_channels(hw.pim.channels)}
    # a one-point space for this point (its draft_channels may not be in the grid)
    one = Space(tuple((n, (point[n],)) for n in study.space.names))
    r = (ev.simulate if runtime else ev.evaluate)(replace(study, space=one), 0)
    split = ev.channels(point, hw) if hw.pim is not None and r["feasible"] else None
    draft_channels = split[0] if split and not split[2] else point["draft_channels"]
    return {"schedule": point["schedule"], "gamma": point["gamma"],
            "mapping": point["mapping"], "draft_channels": draft_channels, **r}


def _best(ev, study, name: str, batch: int) -> dict:
    """The lowest ms/token over BEST_SCHEDULES x BEST_MAPPINGS x BEST_GAMMAS."""
    found = None
    for mapping in BEST_MAPPINGS:
        for schedule in BEST_SCHEDULES:
            for g in (BEST_GAMMAS if schedule != "none" else BEST_GAMMAS[:1]):
                r = _eval(ev, study, {"hw": name, "batch": batch, "mapping": mapping,
                                      "draft_channels": 0, "schedule": schedule,
                                      "gamma": g}, False)
                if r["feasible"] and (found is None or r["itl_ms"] < found["itl_ms"]):
                    found = r
    return found or {"feasible": 0, "note": "no feasible point in the sweep"}


def _text(name: str, text: str, tp: int | None) -> str:
    """The system's TOML with [system] xpus = tp (the evaluator loads texts)."""
    if not tp:
        return text
    import re
    from speccc.hw import load_hw
    if load_hw(name, system=True).system.xpus == tp:
        return text
    out, n = re.subn(r"(?m)^(xpus\s*=\s*)\d+", rf"\g<1>{tp}", text, count=1)
    out = re.sub(r'(?m)^name\s*=\s*"([^"]*)"', rf'name = "\1-tp{tp}"', out, count=1)
    return out if n else text
