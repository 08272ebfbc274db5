"""The Pareto front of latency vs energy per token, and the best point by an objective.

Both minimized; ties and the order of the front are broken by point id, so the front is
the same whatever order the points were evaluated in.
"""
from __future__ import annotations

AXES = ("itl_ms", "energy_per_token_mj")


def feasible(rows):
    return [r for r in rows if r["feasible"]]


def front(rows, axes=AXES) -> list[dict]:
    """Non-dominated feasible rows, by the first axis then id."""
    x, y = axes
    out, best_y = [], float("inf")
    for r in sorted(feasible(rows), key=lambda r: (r[x], r[y], r["id"])):
        if r[y] < best_y:
            out.append(r)
            best_y = r[y]
    return out


def best(rows, metric: str) -> dict | None:
    ok = feasible(rows)
    return min(ok, key=lambda r: (r[metric], r["id"])) if ok else None
