"""Run a search: points in chunks on an executor, appended to DIR/points.csv as they
finish, so an interrupted sweep resumes where it stopped (points already in the file are
not evaluated again; a half-written last line is dropped).

DIR/study.json records what the ids mean (space, models, workload); resuming into a
directory of another study is refused. At the end points.csv is rewritten in id order.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import time
from pathlib import Path

from speccc.dse.evaluate import METRICS, run_task
from speccc.dse.pareto import front
from speccc.errors import SpecccError
from speccc.fileio import write_text_atomic

# Seconds to pause after each chunk: lets tests kill a sweep midway (never set otherwise).
TEST_DELAY = float(os.environ.get("SPECCC_DSE_TEST_DELAY", "0"))


def study_signature(study) -> dict:
    return {"target": study.target, "draft": study.draft,
            "space": [[n, list(v)] for n, v in study.space.dims],
            "alphas": list(study.alphas), "trace": bool(study.trace),
            "prompt_len": study.prompt_len, "max_new_tokens": study.max_new_tokens,
            "cost_model": study.cost_model}


class PointStore:
    """DIR/points.csv: every evaluated point, id first, then dimensions, then metrics."""

    def __init__(self, out_dir: str, study):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.space = study.space
        self.columns = ["id", *self.space.names, *METRICS]
        self.path = self.dir / "points.csv"
        sig = study_signature(study)
        sig_path = self.dir / "study.json"
        if sig_path.exists() and json.loads(sig_path.read_text()) != sig:
            raise SpecccError(f"{sig_path}: this directory holds another study (space, "
                              "models or workload differ): use a new -o DIR")
        write_text_atomic(sig_path, json.dumps(sig, indent=1) + "\n")
        self.rows: dict[int, dict] = {}
        if self.path.exists():
            self._load()
        else:
            self.path.write_text(",".join(self.columns) + "\n")

    def _load(self) -> None:
        text = self.path.read_text()
        if not text.endswith("\n"):              # killed mid-write: drop the partial line
            text = text[:text.rfind("\n") + 1]
        lines = text.splitlines()
        if not lines or lines[0].split(",") != self.columns:
            raise SpecccError(f"{self.path}: columns differ from this study's: use a new "
                              "-o DIR")
        for rec in csv.DictReader(io.StringIO(text)):
            row = self._typed(rec)
            self.rows[row["id"]] = row
        write_text_atomic(self.path, text)

    def _typed(self, rec: dict) -> dict:
        out = {"id": int(rec["id"])}
        for name, vals in self.space.dims:
            out[name] = next(v for v in vals if str(v) == rec[name])
        for m in METRICS:
            v = rec[m]
            out[m] = (int(v) if m == "feasible" else v if m == "note"
                      else float(v) if v != "" else None)
        return out

    def add(self, rows: list[dict]) -> None:
        """Append rows in one write (a kill loses at most this chunk)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow(["" if r[c] is None else repr(r[c]) if isinstance(r[c], float)
                        else r[c] for c in self.columns])
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        for rec in csv.DictReader(io.StringIO(buf.getvalue()), fieldnames=self.columns):
            row = self._typed(rec)               # as a resumed run would read it back
            self.rows[row["id"]] = row

    def finalize(self) -> list[dict]:
        rows = [self.rows[i] for i in sorted(self.rows)]
        buf = io.StringIO()
        w = csv.DictWriter(buf, self.columns, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r[c] is None else repr(r[c]) if isinstance(r[c], float)
                        else r[c] for c in self.columns})
        write_text_atomic(self.path, buf.getvalue())
        return rows


def chunks(ids: list[int], size: int) -> list[tuple]:
    return [("eval", ids[i:i + size]) for i in range(0, len(ids), size)]


def run_sweep(study, strategy, executor, store: PointStore, chunk: int = 256,
              progress=None, extra=None) -> list[dict]:
    """Evaluate what `strategy` asks (see search.py) plus `extra(rows)` ids after it;
    returns every row of the store in id order."""
    def evaluate(ids):
        todo = [i for i in ids if i not in store.rows]
        for _, rows in executor.run(run_task, study, chunks(todo, chunk)):
            store.add(rows)
            if TEST_DELAY:
                time.sleep(TEST_DELAY)
            if progress:
                progress(len(rows))
        return [store.rows[i] for i in ids]

    gen = strategy
    try:
        ids = next(gen)
        while True:
            ids = gen.send(evaluate(ids))
    except StopIteration:
        pass
    if extra is not None:
        evaluate(extra(list(store.rows.values())))
    return store.finalize()


def confirm(study, executor, rows, n_front: int, n_random: int, seed: int) -> list[dict]:
    """Re-run Pareto points (evenly spaced along the front) and a seeded random sample of
    feasible points on the runtime; (analytical, simulated) pairs with relative errors."""
    pf = front(rows)
    picks = [pf[round(i * (len(pf) - 1) / max(n_front - 1, 1))]["id"]
             for i in range(min(n_front, len(pf)))] if pf else []
    ok = sorted(r["id"] for r in rows if r["feasible"] and r["id"] not in picks)
    picks = list(dict.fromkeys(picks)) + random.Random(seed).sample(ok, min(n_random,
                                                                            len(ok)))
    sims = {}
    for _, out in executor.run(run_task, study, [("sim", [i]) for i in picks]):
        for r in out:
            sims[r["id"]] = r
    by_id = {r["id"]: r for r in rows}
    res = []
    on_front = {r["id"] for r in pf}
    for i in picks:
        a, s = by_id[i], sims[i]
        keys = ("tokens_per_s", "itl_ms", "energy_per_token_mj")
        err = cond = None
        if s["feasible"]:
            err = {m: abs(a[m] - s[m]) / abs(s[m]) for m in keys}
            # the same at the acceptance length the runtime's draws realized: what is
            # left is the closed form's error, not sampling noise
            r = s["accept_len"] / a["accept_len"]
            fix = {"tokens_per_s": r, "itl_ms": 1 / r, "energy_per_token_mj": 1 / r}
            cond = {m: abs(a[m] * fix[m] - s[m]) / abs(s[m]) for m in keys}
        res.append({"id": i, "schedule": a["schedule"], "on_front": i in on_front,
                    "analytical": {m: a[m] for m in keys + ("accept_len",)},
                    "simulated": {m: s[m] for m in keys + ("accept_len",)},
                    "rel_error": err, "rel_error_at_realized_acceptance": cond,
                    "note": s["note"]})
    return res
