"""A dse mapping as partition passes: which shape each model's mapping is solved at.

Rule mappings (attacc, all-npu, all-pim) place ops by kind: one partition of the module
at the decode shape (T = 1) serves every point. Solved mappings (specpim, mincut) are
chosen by the partition pass's exact solver, and SpecPIM fixes its mapping offline for
a given (batch, γ, max sequence length): so they are solved per (batch, γ), the target at
its verify shape (the positions a verify forward carries per request, below), the draft
at its decode shape (1 position), both for `batch` requests at P = the middle of the
generation. A large batch·(γ+1) turns the verify compute-bound, and GEMMs move to the
NPU. Each is priced as the runtime prices that model at the point: on the model's own
PIM channels (the draft/target split the point uses) with the sweep's cost model
(`partition{channels=A-B,cost-model=...}`), so the mapping is optimal for the prices the
evaluator and the runtime then charge. The evaluator (evaluate.py), best.toml's run
command and [dse] passes (report.py) and `speccc run --hw best.toml`
(cli/run_commands.py) all build their passes here.
"""
from __future__ import annotations

from typing import NamedTuple

RULE_MAPPINGS = ("attacc", "all-npu", "all-pim")
SOLVED_MAPPINGS = ("specpim", "mincut")

# positions per request in one target verify forward, by schedule (pipeinfer chains
# runs of γ positions; without speculation the target decodes one token)
VERIFY_POSITIONS = {
    "none": lambda gamma: 1,
    "serial": lambda gamma: gamma + 1,
    "overlap": lambda gamma: gamma + 1,
    "pipeinfer": lambda gamma: gamma,
}


def partition_context(prompt_len: int, max_new_tokens: int) -> int:
    """P the mapping is partitioned at: the middle of the generation."""
    return prompt_len + max_new_tokens // 2


class SolveShape(NamedTuple):
    """Where a role's solved mapping is chosen: positions per request, requests, and the
    PIM channels [lo, hi) the model owns at the point (None: the partition's default,
    the whole device)."""
    positions: int
    batch: int
    channels: tuple | None = None


def solve_shape(mapping: str, role: str, schedule: str, gamma: int, batch: int,
                channels: tuple | None = None) -> SolveShape | None:
    """The shape (and channels) the role's mapping is solved at; None for a mapping that
    does not depend on the shape."""
    if mapping not in SOLVED_MAPPINGS:
        return None
    positions = VERIFY_POSITIONS[schedule](gamma) if role == "target" else 1
    return SolveShape(positions, batch, tuple(channels) if channels else None)


def partition_passes(mapping: str, hw: str, P: int, shapes: dict | None,
                     xpu: str = "npu", cost_model: str | None = None
                     ) -> list[tuple[str, dict]]:
    """[(pass name, options)] giving a module the mapping's devices. `shapes`: role ->
    SolveShape for a solved mapping (one pass per role, priced on its channels with
    `cost_model`), else None (one pass over every graph at T = 1)."""
    base = {"hw": hw}
    if mapping != "mincut":
        base["mapping"] = mapping
    if xpu != "npu":
        base["devices"] = f"{xpu}:pim"
    if not shapes:
        return [("partition", {**base, "bind": f"T=1:P={P}"})]
    out = []
    for role, shape in shapes.items():
        opts = {**base, "bind": f"T={shape.positions}:P={P}", "graphs": role}
        if shape.batch != 1:
            opts["batch"] = str(shape.batch)
        if shape.channels:
            lo, hi = shape.channels
            opts["channels"] = f"{lo}-{hi - 1}"
        if cost_model and cost_model != "targets":
            opts["cost-model"] = cost_model
        out.append(("partition", opts))
    return out


def pipeline_text(passes: list[tuple[str, dict]]) -> str:
    """The passes as a --passes pipeline string."""
    return ",".join(name + "{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"
                    for name, opts in passes)


def point_passes(point: dict, hw: str, P: int, xpu: str = "npu",
                 spans: dict | None = None, cost_model: str | None = None) -> str:
    """The --passes text that runs a dse point's mapping (point: schedule, gamma,
    mapping, batch; `spans`: role -> the (lo, hi) channels it owns, as
    Evaluator.spans gives them); '' for `auto` (run's default placement)."""
    m = point["mapping"]
    if m == "auto":
        return ""
    roles = ("target",) if point["schedule"] == "none" else ("target", "draft")
    shapes = {r: solve_shape(m, r, point["schedule"], point["gamma"], point["batch"],
                             (spans or {}).get(r))
              for r in roles} if m in SOLVED_MAPPINGS else None
    return pipeline_text(partition_passes(m, hw, P, shapes, xpu, cost_model))


def spans_text(spans: dict) -> str:
    """role -> (lo, hi) as best.toml's [dse] channels: 'draft=0-7,target=8-31'."""
    return ",".join(f"{r}={lo}-{hi - 1}" for r, (lo, hi) in sorted(spans.items()))


def parse_spans(text: str | None, where: str = "[dse] channels") -> dict | None:
    """The inverse of spans_text (None: not recorded)."""
    if not text:
        return None
    from speccc.errors import SpecccError
    out = {}
    for item in text.split(","):
        role, _, rng = item.partition("=")
        lo, _, hi = rng.partition("-")
        if role not in ("draft", "target") or not lo.isdigit() or not hi.isdigit() \
                or int(lo) > int(hi):
            raise SpecccError(f"{where}: {item!r}: expected draft=A-B,target=C-D")
        out[role] = (int(lo), int(hi) + 1)
    return out
