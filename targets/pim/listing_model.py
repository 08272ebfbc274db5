"""The PIM listing data model: Affine operands (with their text form), Command, Loop,
Comment, Program; the work bound (commands + loop iterations, counted unexpanded); and
the body transforms kernels build listings with (bind a loop variable, inline a
one-trip loop, shift an operand). listing.py is the module to import from.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Union

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from speccc.errors import SpecccError
from speccc.targets.pim.isa import OPERAND_ORDER, OPS


# ------------------------------------------------------------------ model -----
@dataclass(frozen=True)
class Affine:
    """const + sum(coeff * var); terms sorted by variable name, no zero coefficients."""
    const: int = 0
    terms: tuple[tuple[str, int], ...] = ()

    @staticmethod
    def of(value: "int | Affine | str") -> "Affine":
        if isinstance(value, Affine):
            return value
        if isinstance(value, int):
            return Affine(int(value))
        return _parse_affine(value)

    @staticmethod
    def make(const: int, coeffs: dict[str, int]) -> "Affine":
        return Affine(const, tuple(sorted((v, c) for v, c in coeffs.items() if c)))

    def __add__(self, other: "int | Affine") -> "Affine":
        o = Affine.of(other)
        coeffs = dict(self.terms)
        for v, c in o.terms:
            coeffs[v] = coeffs.get(v, 0) + c
        return Affine.make(self.const + o.const, coeffs)

    def __mul__(self, k: int) -> "Affine":
        return Affine.make(self.const * k, {v: c * k for v, c in self.terms})

    def coeff(self, var: str) -> int:
        return dict(self.terms).get(var, 0)

    def eval(self, env: dict[str, int]) -> int:
        return self.const + sum(c * env[v] for v, c in self.terms)

    def __str__(self) -> str:
        out = str(self.const) if self.const or not self.terms else ""
        for v, c in self.terms:
            sign = "-" if c < 0 else ("+" if out else "")
            mag = abs(c)
            out += f"{sign}{v}" if mag == 1 else f"{sign}{mag}*{v}"
        return out


Value = Union[Affine, str]


@dataclass(frozen=True)
class Command:
    op: str
    args: tuple[tuple[str, Value], ...]       # every operand, canonical order
    stamp: int | None = None
    comment: str | None = None
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)

    def arg(self, name: str) -> Value:
        for k, v in self.args:
            if k == name:
                return v
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.args)


@dataclass(frozen=True)
class Loop:
    var: str | None
    count: int
    body: tuple["Node", ...]
    comment: str | None = None
    end_comment: str | None = None
    line: int = field(default=0, compare=False)
    col: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Comment:
    text: str
    line: int = field(default=0, compare=False)


Node = Union[Command, Loop, Comment]


@dataclass(frozen=True)
class Program:
    body: tuple[Node, ...]
    hw: str | None = None
    name: str = field(default="<listing>", compare=False)


def cmd(op: str, comment: str | None = None, stamp: int | None = None,
        **operands: "int | str | Affine") -> Command:
    """Build a canonical Command (used by generators): `cmd("MAC.ab", ch=0, col="c")`."""
    spec = OPS.get(op)
    if spec is None:
        raise SpecccError(f"unknown command {op}")
    missing = [k for k in spec.required if k not in operands]
    extra = [k for k in operands if k not in spec.required + spec.optional]
    if missing or extra:
        raise SpecccError(f"{op}: missing {missing} / unexpected {extra} operands")
    args = []
    for name in OPERAND_ORDER:
        if name in spec.required or name in spec.optional:
            value = operands.get(name, 0)
            args.append((name, value if name == "fn" else Affine.of(value)))
    return Command(op, tuple(args), stamp, comment)


def loop(var: str | None, count: int, body, comment: str | None = None) -> Loop:
    return Loop(var, count, tuple(body), comment)


# ------------------------------------------------------- affine text ------
@lru_cache(maxsize=1)
def _affine_parser() -> Lark:
    return Lark(r"""
        start: SIGN? term (SIGN term)*
        term: INT | NAME | INT "*" NAME | NAME "*" INT
        SIGN: "+" | "-"
        NAME: /[a-z_][a-z0-9_]*/
        INT: /[0-9]+/
        %ignore " "
    """, parser="lalr")


@lru_cache(maxsize=4096)
def _parse_affine(text: str) -> Affine:
    """`3*i-2+j` -> Affine (used by the builders; listings go through the grammar)."""
    try:
        tree = _affine_parser().parse(text)
    except UnexpectedInput:
        raise SpecccError(f"bad affine operand {text!r} (use forms like 12, c, 64*t+c-1)") from None
    const, coeffs, sign = 0, {}, 1
    for child in tree.children:
        if isinstance(child, Token):
            sign = -1 if child == "-" else 1
            continue
        k, v = _term_value(child.children)
        if v is None:
            const += sign * k
        else:
            coeffs[v] = coeffs.get(v, 0) + sign * k
    return Affine.make(const, coeffs)


def _term_value(toks) -> tuple[int, str | None]:
    ints = [int(t) for t in toks if t.type == "INT"]
    names = [str(t) for t in toks if t.type == "NAME"]
    return (ints[0] if ints else 1), (names[0] if names else None)


# -------------------------------------------------------------- work bound ----
# Commands + loop iterations `asm --run` will emulate unless --max-commands says more.
# The emulator fast-forwards steady loops, but a loop it cannot (`loop 10^12 {ACT; PRE}`)
# costs ~14 s per million iterations; a 7B decode step's largest listing is far below.
MAX_COMMANDS = 50_000_000


def work(prog: "Program") -> int:
    """Commands plus loop iterations once loops are expanded, counted without expanding
    them: an empty `loop 10000000 {}` is 10^7 iterations of work, not 0 commands."""
    def walk(body) -> int:
        return sum(1 if isinstance(n, Command) else n.count * (1 + walk(n.body))
                   if isinstance(n, Loop) else 0 for n in body)
    return walk(prog.body)


def check_work(prog: "Program", limit: int = MAX_COMMANDS, what: str = "--max-commands") -> int:
    """The estimate, or a SpecccError naming it and the limit, before anything runs."""
    n = work(prog)
    if n > limit:
        raise SpecccError(f"{prog.name}: expands to {n:,} commands and loop iterations, more "
                          f"than the limit {limit:,} ({what})")
    return n


# ---------------------------------------------------------------- helpers -----
def bind_var(body, var: str, value: int) -> list:
    """`body` with loop variable `var` replaced by `value`."""
    out = []
    for node in body:
        if isinstance(node, Command):
            args = tuple((n, v if isinstance(v, str) else
                          Affine.make(v.const + v.coeff(var) * value,
                                      {x: k for x, k in v.terms if x != var}))
                         for n, v in node.args)
            out.append(dataclasses.replace(node, args=args))
        elif isinstance(node, Loop):
            out.append(dataclasses.replace(node, body=tuple(bind_var(node.body, var, value))))
        else:
            out.append(node)
    return out


def keep_commands(body, keep) -> tuple:
    """`body` with the commands `keep` rejects removed (loops kept, emptied ones dropped):
    e.g. a listing's MACs alone, to time them apart from its buffer loads."""
    out = []
    for node in body:
        if isinstance(node, Loop):
            inner = keep_commands(node.body, keep)
            if inner:
                out.append(dataclasses.replace(node, body=inner))
        elif not isinstance(node, Command) or keep(node):
            out.append(node)
    return tuple(out)


def loop_or_inline(var: str, count: int, body, comment: str | None = None) -> list:
    """[loop var count {body}], or body itself with var = 0 when count is 1."""
    if count == 1:
        return bind_var(body, var, 0)
    return [loop(var, count, body, comment=comment)]


def shift_field(body, field: str, delta) -> list:
    """Add `delta` (int or Affine) to operand `field` of every command in `body`."""
    delta = Affine.of(delta)
    out = []
    for node in body:
        if isinstance(node, Command):
            if node.has(field):
                args = tuple((n, v + delta if n == field else v) for n, v in node.args)
                node = dataclasses.replace(node, args=args)
            out.append(node)
        elif isinstance(node, Loop):
            out.append(dataclasses.replace(node, body=tuple(shift_field(node.body, field, delta))))
        else:
            out.append(node)
    return out
