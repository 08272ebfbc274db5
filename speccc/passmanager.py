"""Passes, their registry, and the pass manager that runs pipeline strings.

A pass is a class with a `name` and typed options (dataclass fields), registered with
`@register_pass`; one pass per file in passes/. Pipelines are strings as in mlir-opt /
xdsl-opt: `canonicalize,fold,fuse{patterns=attention}` parsed by a lark grammar. The
verifier runs after every pass when `verify_each` is set (the default in tests).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import time
from typing import Callable, ClassVar

import lark

from speccc.errors import ParseError, SpecccError
from speccc.ir.core import Graph, Module
from speccc.ir.verifier import verify

PASSES: dict[str, type["Pass"]] = {}


@dataclasses.dataclass
class Pass:
    """Base class. Subclasses set `name`, add option fields, override run_on_graph/run."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def run(self, module: Module) -> None:
        for g in list(module):
            self.run_on_graph(g)

    def run_on_graph(self, graph: Graph) -> None:
        raise NotImplementedError

    def spec(self) -> str:
        opts = [f"{f.name}={_fmt(getattr(self, f.name))}" for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default]
        return self.name + ("{" + ",".join(opts) + "}" if opts else "")


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ":".join(map(str, v))
    return str(v)


def register_pass(cls: type[Pass]) -> type[Pass]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass {cls.name} registered twice")
    cls = dataclasses.dataclass(cls)  # options are the dataclass fields
    PASSES[cls.name] = cls
    return cls


def _load_passes() -> None:
    from speccc.ir.plugins import import_submodules
    import_submodules("speccc.passes")


def all_passes() -> dict[str, type[Pass]]:
    _load_passes()
    return dict(sorted(PASSES.items()))


_GRAMMAR = r"""
pipeline: [item ("," item)*]
item: NAME options?
options: "{" [option ("," option)*] "}"
option: NAME "=" VALUE
NAME: /[A-Za-z_][A-Za-z0-9_-]*/
VALUE: /[^,{}\s]+/
%import common.WS
%ignore WS
"""


@functools.cache
def _pipeline_parser() -> lark.Lark:
    return lark.Lark(_GRAMMAR, start="pipeline", parser="lalr")


def _convert_option(pass_name: str, field: dataclasses.Field, text: str):
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind.startswith("list"):
            return [s for s in text.split(":") if s]
        return text
    except ValueError:
        raise SpecccError(f"pass '{pass_name}': option '{field.name}' expects {kind}, "
                          f"got '{text}'") from None


def make_pass(name: str, options: dict[str, str]) -> Pass:
    passes = all_passes()
    cls = passes.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, passes, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SpecccError(f"unknown pass '{name}'{hint}; known: {', '.join(passes)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in options.items():
        key = k.replace("-", "_")
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise SpecccError(f"pass '{name}' has no option '{k}' (options: {known})")
        kwargs[key] = _convert_option(name, fields[key], v)
    return cls(**kwargs)


def parse_pipeline(text: str) -> list[Pass]:
    try:
        tree = _pipeline_parser().parse(text)
    except lark.UnexpectedInput as e:
        raise ParseError(f"bad pipeline '{text}' at column {e.column}: expected "
                         "'pass,pass{opt=value}'", location="pipeline") from None
    out = []
    for item in tree.children:
        if item is None:
            continue
        name = str(item.children[0])
        opts = {}
        if len(item.children) > 1 and item.children[1] is not None:
            for o in item.children[1].children:
                if o is not None:
                    opts[str(o.children[0])] = str(o.children[1])
        out.append(make_pass(name, opts))
    return out


@dataclasses.dataclass
class PassManager:
    passes: list[Pass]
    verify_each: bool = True
    print_after: set[str] | str = dataclasses.field(default_factory=set)  # names or "all"
    printer: Callable[[str, Module], None] | None = None
    timings: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    on_pass: Callable[[int, int, str], None] | None = None   # (done, total, next pass): bars

    @staticmethod
    def parse(pipeline: str, **kw) -> "PassManager":
        return PassManager(parse_pipeline(pipeline), **kw)

    def run(self, module: Module) -> Module:
        if self.verify_each:
            verify(module)
        for i, p in enumerate(self.passes):
            if self.on_pass:
                self.on_pass(i, len(self.passes), p.name)
            t0 = time.perf_counter()
            p.run(module)
            self.timings.append((p.spec(), time.perf_counter() - t0))
            if self.verify_each:
                try:
                    verify(module)
                except SpecccError as e:
                    raise SpecccError(f"verifier failed after pass '{p.name}': {e}") from None
            if self.printer and (self.print_after == "all" or p.name in self.print_after):
                self.printer(p.spec(), module)
        return module
