"""Registries filled by importing every module of a package (op groups, converters, passes)."""
from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def import_submodules(package: str) -> None:
    """Import each public module of `package` once, in name order (deterministic)."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
