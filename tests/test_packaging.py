"""pyproject.toml lists every package of the tree (a missing one breaks wheel installs)."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"passes": "speccc.passes", "targets": "speccc.targets"}


def tree_packages() -> set[str]:
    out = set()
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        parts = rel.parts
        if parts[0] in MAPPED:
            out.add(".".join((MAPPED[parts[0]],) + parts[1:]))
        elif parts[0] == "speccc":
            out.add(".".join(parts))
    return out


def test_every_package_is_listed():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(conf["tool"]["setuptools"]["packages"])
    assert tree_packages() <= listed, sorted(tree_packages() - listed)


# import name -> distribution name, where they differ; None: comes with a declared one
# `distributed` comes with the declared `dask[distributed]`
IMPORT_TO_DIST = {"google": None, "yaml": "pyyaml", "PIL": None, "distributed": "dask"}
OPTIONAL = {"torch", "transformers", "onnxscript", "onnxruntime", "ray", "pytest",
            "hypothesis", "numba"}   # numba: the [fast] extra (guarded import)


def _third_party_imports() -> set[str]:
    import ast
    import sys
    names = set()
    for root in ("speccc", "passes", "targets"):
        for f in (ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "speccc"}


def test_every_import_is_a_declared_dependency():
    """speccc imported ml_dtypes without declaring it (issue 17)."""
    import re
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {re.split(r"[<>=\[ ;]", d)[0].lower().replace("_", "-")
                for d in conf["project"]["dependencies"]}
    missing = set()
    for name in _third_party_imports() - OPTIONAL:
        dist = IMPORT_TO_DIST.get(name, name)
        if dist is not None and dist.lower().replace("_", "-") not in declared:
            missing.add(name)
    assert not missing, sorted(missing)


def test_declared_onnx_has_what_speccc_uses():
    """The declared minimum onnx (1.20) is the first with TensorProto.INT2."""
    import re

    import onnx
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    spec = next(d for d in conf["project"]["dependencies"] if d.startswith("onnx"))
    assert tuple(map(int, re.search(r">=([\d.]+)", spec).group(1).split("."))) >= (1, 20)
    assert hasattr(onnx.TensorProto, "INT2")
