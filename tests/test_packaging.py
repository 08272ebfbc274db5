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
