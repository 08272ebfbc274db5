"""PipeInfer with a batch: what four requests sharing the pipeline give on the model.

    python benchmarks/bench_pipeinfer_batch.py                      # hbm3-pim-x8, aim-gddr6
    python benchmarks/bench_pipeinfer_batch.py --hw hbm3-pim-x8

LLaMA-2-7B target + LLaMA-68M draft, as benchmarks/bench_speculative.py runs them
(fp16, shapes-only, synthetic acceptance 0.8, prompt 128, 128 new tokens per request,
the targets' cost models): tokens/s (summed over requests) and energy per token of
pipeinfer at batch 1 and at batch 4 with each burst-round policy (`rounds=request`:
one request per round, round-robin; `rounds=batch`: every ready request in one round),
as multiples of `none` at the same batch, for gamma 4 and 8. No goal: it prints what the
model says. Results: stdout and benchmarks/results/bench_pipeinfer_batch.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_speculative import PROMPT, TOKENS, module_7b

from speccc.passmanager import PassManager
from speccc.runtime.runner import RunConfig, simulate

RESULTS = Path(__file__).resolve().parent / "results" / "bench_pipeinfer_batch.json"


def point(m, hw, spec) -> dict:
    PassManager.parse(f"speculate{{{spec},hw={hw}}}").run(m)
    rep = simulate(m, RunConfig(max_new_tokens=TOKENS, prompt_len=PROMPT, acceptance=0.8,
                                seed=0))[0]
    return {"tokens_per_s": rep["tokens_per_s"],
            "energy_per_token_mj": rep["energy_per_token_mj"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="hbm3-pim-x8,aim-gddr6")
    args = ap.parse_args()
    m, rows = module_7b(), []
    for hw in args.hw.split(","):
        for batch in (1, 4):
            none = point(m, hw, f"schedule=none,gamma=1,batch={batch}")
            for rounds in ("request", "batch") if batch > 1 else ("request",):
                for gamma in (4, 8):
                    r = point(m, hw, f"schedule=pipeinfer,gamma={gamma},batch={batch},"
                                     f"rounds={rounds}")
                    row = {"hw": hw, "batch": batch, "rounds": rounds, "gamma": gamma,
                           "none_tokens_per_s": none["tokens_per_s"], **r,
                           "speedup": r["tokens_per_s"] / none["tokens_per_s"],
                           "energy_ratio": r["energy_per_token_mj"]
                           / none["energy_per_token_mj"]}
                    rows.append(row)
                    print(f"{hw} batch {batch} rounds={rounds} γ={gamma}: none "
                          f"{row['none_tokens_per_s']:.1f} tok/s, pipeinfer "
                          f"{row['tokens_per_s']:.1f} tok/s = {row['speedup']:.2f}× none, "
                          f"E {row['energy_ratio']:.2f}×", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1))
    print("wrote", RESULTS)


if __name__ == "__main__":
    main()
