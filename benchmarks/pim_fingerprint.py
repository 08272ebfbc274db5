"""Fingerprint of everything the PIM timing model decides, to prove a refactor changed nothing.

    python benchmarks/pim_fingerprint.py -o before.json
    python benchmarks/pim_fingerprint.py -o after.json --compare before.json

Records, per preset (aim-gddr6, hbm-pim, hbm3-pim):
- `speccc compile` of `zoo llama-tiny` (decode, T=1, P=16) and of shapes-only `zoo
  llama2-7b` (T=1, P=1024): every numeric leaf of report.json (cycles, ns, energy, bytes,
  ...) and a sha256 of every .pim listing and .ir file; for a model that does not fit
  (llama2-7b on hbm-pim) the exit code and error line instead;
- bench_pim_gemv.py's figures (GEMV 4096x4096 and the 7B decode-step GEMVs), without the
  wall-clock fields.
`--compare` exits 1 and prints the differing keys when anything moved.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRESETS = ("aim-gddr6", "hbm-pim", "hbm3-pim")
MODELS = {"llama-tiny": ("T=1,P=16", []), "llama2-7b": ("T=1,P=1024", ["--shapes-only"])}


def _speccc(*args, cwd) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("speccc")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True)


def _leaves(obj, prefix, out) -> None:
    """Numeric leaves by JSON path (wall-clock fields excluded: they are not model output)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _leaves(v, f"{prefix}.{k}", out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _leaves(v, f"{prefix}[{i}]", out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and "wall" not in prefix:
        out[prefix] = obj


def compile_fingerprints(tmp: Path) -> dict:
    out = {}
    for model, (bind, extra) in MODELS.items():
        onnx = tmp / f"{model}.onnx"
        r = _speccc("zoo", model, "-o", str(onnx), cwd=tmp)
        assert r.returncode == 0, r.stderr
        for hw in PRESETS:
            od = tmp / f"out-{model}-{hw}"
            r = _speccc("compile", str(onnx), "--bind", bind, "--hw", hw, "-o", str(od), *extra,
                        cwd=tmp)
            key = f"{model}@{hw}"
            if r.returncode != 0:
                out[key] = {"exit": r.returncode, "error": r.stderr.strip().splitlines()[-1]}
                continue
            rec: dict = {"exit": 0}
            _leaves(json.loads((od / "report.json").read_text()), "report", rec)
            for f in sorted(od.rglob("*")):
                if f.suffix in (".pim", ".ir"):
                    rec[f"sha256:{f.relative_to(od)}"] = hashlib.sha256(f.read_bytes()).hexdigest()
            out[key] = rec
    return out


def gemv_fingerprints() -> dict:
    sys.path.insert(0, str(HERE))
    import bench_pim_gemv as b
    from speccc.hw import load_hw
    out = {}
    for name in PRESETS:
        hw = load_hw(name)
        rec: dict = {}
        _leaves({"gemv": b.bench_gemv(hw), "llama": b.bench_llama(hw)}, "bench", rec)
        out[f"bench_pim_gemv@{name}"] = rec
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--compare", type=Path, help="earlier fingerprint to diff against")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        fp = {**compile_fingerprints(Path(d)), **gemv_fingerprints()}
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(json.dumps(fp, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, args.output)
    n = sum(len(v) for v in fp.values())
    print(f"{args.output}: {len(fp)} runs, {n} recorded values")
    if args.compare is None:
        return 0
    old = json.loads(args.compare.read_text())
    diffs = []
    for run in sorted(set(old) | set(fp)):
        a, b = old.get(run, {}), fp.get(run, {})
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                diffs.append(f"{run} {k}: {a.get(k)!r} -> {b.get(k)!r}")
    print("\n".join(diffs[:50]) if diffs else f"identical to {args.compare} ({n} values)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
