"""A dse mapping as partition passes: which shape each model's mapping is solved at.

Rule mappings (attacc, all-npu, all-pim) place ops by kind: one partition of the module
at the decode shape (T = 1) serves every point. Solved mappings (specpim, mincut) are
chosen by the partition pass's exact solver, and SpecPIM fixes its mapping offline for
a given (batch, γ, max sequence length): so they are solved per (batch, γ), the target at
its verify shape (the positions a verify forward carries per request, below), the draft
at its decode shape (1 position), both for `batch` requests at P = the middle of the
generation. A large batch·(γ+1) turns the verify compute-bound, and GEMMs move to the
NPU. The evaluator (evaluate.py), best.toml's run command (report.py) and `speccc run
--hw best.toml` (cli/run_commands.py) all build their passes here.
"""
from __future__ import annotations

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


def solve_shape(mapping: str, role: str, schedule: str, gamma: int,
                batch: int) -> tuple[int, int] | None:
    """(positions per request, batch) the role's mapping is solved at; None for a
    mapping that does not depend on the shape."""
    if mapping not in SOLVED_MAPPINGS:
        return None
    positions = VERIFY_POSITIONS[schedule](gamma) if role == "target" else 1
    return positions, batch


def partition_passes(mapping: str, hw: str, P: int, shapes: dict | None,
                     xpu: str = "npu") -> list[tuple[str, dict]]:
    """[(pass name, options)] giving a module the mapping's devices. `shapes`: role ->
    solve_shape(...) for a solved mapping (one pass per role), else None (one pass over
    every graph at T = 1)."""
    base = {"hw": hw}
    if mapping != "mincut":
        base["mapping"] = mapping
    if xpu != "npu":
        base["devices"] = f"{xpu}:pim"
    if not shapes:
        return [("partition", {**base, "bind": f"T=1:P={P}"})]
    out = []
    for role, (positions, batch) in shapes.items():
        opts = {**base, "bind": f"T={positions}:P={P}", "graphs": role}
        if batch != 1:
            opts["batch"] = str(batch)
        out.append(("partition", opts))
    return out


def pipeline_text(passes: list[tuple[str, dict]]) -> str:
    """The passes as a --passes pipeline string."""
    return ",".join(name + "{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"
                    for name, opts in passes)


def point_passes(point: dict, hw: str, P: int, xpu: str = "npu") -> str:
    """The --passes text that runs a dse point's mapping (point: schedule, gamma,
    mapping, batch); '' for `auto` (run's default placement)."""
    m = point["mapping"]
    if m == "auto":
        return ""
    roles = ("target",) if point["schedule"] == "none" else ("target", "draft")
    shapes = {r: solve_shape(m, r, point["schedule"], point["gamma"], point["batch"])
              for r in roles} if m in SOLVED_MAPPINGS else None
    return pipeline_text(partition_passes(m, hw, P, shapes, xpu))
