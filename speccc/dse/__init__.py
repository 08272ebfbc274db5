"""speccc.dse: design-space exploration of speculative decoding on NPU + PIM.

space.py (dimensions from a TOML file, point ids), closedform.py (each schedule's
expected iteration time and energy), evaluate.py (cost tables from ModelCosts; points
by closed form or by the runtime), search.py (grid, NSGA-II), executors.py (local,
Dask, Ray), sweep.py (chunks, resumable points.csv, confirmation), pareto.py,
report.py (pareto.json/png, best.toml, report.md), driver.py (the command's body).
docs/dse.md describes them.
"""
