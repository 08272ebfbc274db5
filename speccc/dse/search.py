"""Which points to evaluate: the whole grid, or pymoo's NSGA-II over the grid's digits.

A strategy is a generator of batches of point ids; it receives the rows of each batch
back (`rows = yield ids`) and decides the next. Points are grid points in both, so ids,
resume and merging work the same way. NSGA-II is pymoo's (integer genome: one value
index per dimension, rounded SBX crossover and polynomial mutation, duplicates removed),
seeded, and told the same objective values whatever executor computed them, so it asks
for the same points.
"""
from __future__ import annotations

from speccc.errors import SpecccError

PENALTY = 1e30   # infeasible points: dominated by everything


def grid(space, **_):
    yield list(range(space.size))


def nsga2(space, objectives, seed: int = 0, population: int = 40, generations: int = 25):
    import numpy as np
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.core.evaluator import Evaluator
    from pymoo.core.termination import NoTermination
    from pymoo.problems.static import StaticProblem

    upper = np.array([len(v) - 1 for _, v in space.dims])
    problem = Problem(n_var=len(upper), n_obj=len(objectives), xl=0, xu=upper, vtype=int)
    algo = NSGA2(pop_size=population, sampling=IntegerRandomSampling(),
                 crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                 mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
                 eliminate_duplicates=True)
    algo.setup(problem, termination=NoTermination(), seed=seed, verbose=False)
    for _ in range(generations):
        pop = algo.ask()
        ids = [space.from_digits(x) for x in pop.get("X").round().astype(int)]
        rows = yield sorted(set(ids))
        by_id = {r["id"]: r for r in rows}
        F = np.array([[by_id[i][m] if by_id[i]["feasible"] else PENALTY
                       for m in objectives] for i in ids], dtype=float)
        Evaluator().eval(StaticProblem(problem, F=F), pop)
        algo.tell(infills=pop)


STRATEGIES = {"grid": grid, "nsga2": nsga2}


def strategy(name: str):
    if name not in STRATEGIES:
        raise SpecccError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    return STRATEGIES[name]
