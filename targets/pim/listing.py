"""PIM listings: the Program data model, the lark parser, and the canonical printer.

A listing is one command a line with explicit operands (`MAC.ab ch=0 row=12 col=3 slot=3
acc=0`), `#` comments, optional `@CYCLE` issue stamps, and `loop [VAR] COUNT { ... }`
blocks. Operand values are affine in the enclosing loop variables (`col=c`,
`src=64*t+c`, `row=100+4*q+t`), so a row stream is a loop, not 64 lines. Printing is
canonical and byte-deterministic; `parse(format_program(p)) == p`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterator, Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from speccc.errors import CapacityError, ParseError, SpecccError
from speccc.textio import check_nesting
from speccc.targets.pim.isa import (AF_FUNCTIONS, OPERAND_ORDER, OPS, RANGE_LIMITS, TOKEN_STRIDE,
                                    ew_slots)


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


# ----------------------------------------------------------------- parser -----
@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (resources.files("speccc.targets.pim") / "listing.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


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


class _Err(Exception):
    def __init__(self, line: int, col: int, msg: str):
        super().__init__(msg)
        self.line, self.col, self.msg = line, col, msg


@v_args(meta=True)
class _Build(Transformer):
    def start(self, meta, items):
        return list(items)

    def comment(self, meta, toks):
        return Comment(str(toks[0])[1:].rstrip(), meta.line)

    def directive(self, meta, toks):
        return ("hw", str(toks[0]), meta.line, meta.column)

    def const(self, meta, toks):
        return (int(toks[0]), None)

    def var(self, meta, toks):
        return (1, str(toks[0]))

    def scaled(self, meta, toks):
        return (int(toks[0]), str(toks[1]))

    def scaled_rev(self, meta, toks):
        return (int(toks[1]), str(toks[0]))

    def expr(self, meta, items):
        return self._affine([Token("SIGN", "+")] + list(items))

    def signed_expr(self, meta, items):
        return self._affine(list(items))

    @staticmethod
    def _affine(items) -> tuple:
        const, coeffs, names = 0, {}, []
        for sign, (k, v) in zip(items[0::2], items[1::2]):
            k = -k if sign == "-" else k
            if v is None:
                const += k
            else:
                coeffs[v] = coeffs.get(v, 0) + k
                names.append(v)
        bare = names[0] if (len(items) == 2 and items[0] == "+" and names
                            and items[1] == (1, names[0])) else None
        return Affine.make(const, coeffs), bare

    def operand(self, meta, items):
        return (str(items[0]), items[1], meta.line, meta.column)

    def command(self, meta, items):
        stamp, comment, op, ops = None, None, None, []
        for it in items:
            if isinstance(it, Token) and it.type == "STAMP":
                stamp = int(it[1:])
            elif isinstance(it, Token) and it.type == "OPCODE":
                op = str(it)
            elif isinstance(it, Token) and it.type == "COMMENT":
                comment = str(it)[1:].rstrip()
            else:
                ops.append(it)
        spec = OPS.get(op)
        if spec is None:
            raise _Err(meta.line, meta.column, f"unknown command {op}"
                       f" (known: {', '.join(sorted(OPS))})")
        given = {}
        for name, (aff, bare), line, col in ops:
            if name not in spec.required + spec.optional:
                raise _Err(line, col, f"{op} has no operand {name!r}"
                           f" (operands: {' '.join(spec.required + spec.optional) or 'none'})")
            if name in given:
                raise _Err(line, col, f"operand {name!r} given twice")
            if name == "fn":
                if bare not in AF_FUNCTIONS:
                    raise _Err(line, col, f"fn must be one of {', '.join(AF_FUNCTIONS)}")
                given[name] = bare
            else:
                given[name] = aff
        for name in spec.required:
            if name not in given:
                raise _Err(meta.line, meta.column, f"{op} needs operand {name!r}")
        args = tuple((n, given.get(n, Affine())) for n in OPERAND_ORDER
                     if n in spec.required or n in spec.optional)
        return Command(op, args, stamp, comment, meta.line, meta.column)

    def loop(self, meta, items):
        var, count, comment, end_comment, body = None, None, None, None, []
        for it in items:
            if isinstance(it, Token) and it.type == "NAME":
                var = str(it)
            elif isinstance(it, Token) and it.type == "INT":
                count = int(it)
            elif isinstance(it, Token) and it.type == "COMMENT":
                # the header comment shares the `loop` line; any other follows the `}`
                if it.line == meta.line:
                    comment = str(it)[1:].rstrip()
                else:
                    end_comment = str(it)[1:].rstrip()
            else:
                body.append(it)
        if count < 1:
            raise _Err(meta.line, meta.column, "loop count must be at least 1")
        return Loop(var, count, tuple(body), comment, end_comment, meta.line, meta.column)


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


def parse(text: str, name: str = "<listing>") -> Program:
    """Parse listing text; errors are ParseError located as NAME:LINE:COL."""
    check_nesting(text, name)
    try:
        items = _Build().transform(_parser().parse(text if text.endswith("\n") else text + "\n"))
    except VisitError as err:
        e = err.orig_exc
        if isinstance(e, _Err):
            raise ParseError(e.msg, location=f"{name}:{e.line}:{e.col}") from None
        raise
    except UnexpectedInput as err:
        line, col = err.line, err.column
        if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken)
                                               and err.token.type == "$END"):
            line, col = text.count("\n") + (0 if text.endswith("\n") else 1) + 1, 1
        raise ParseError(_syntax_message(err), location=f"{name}:{line}:{col}") from None
    hw, body = None, []
    for it in items:
        if isinstance(it, tuple):
            if hw is not None or body and any(not isinstance(b, Comment) for b in body):
                raise ParseError(".hw must come once, before any command",
                                 location=f"{name}:{it[2]}:{it[3]}")
            hw = it[1]
        else:
            body.append(it)
    prog = Program(tuple(body), hw, name)
    _check_scopes(prog.body, [], name)
    return prog


def _syntax_message(err: UnexpectedInput) -> str:
    if isinstance(err, UnexpectedCharacters):
        return f"syntax error: unexpected character {err.char!r}"
    if isinstance(err, UnexpectedEOF):
        return "syntax error: unexpected end of input (unclosed loop?)"
    if isinstance(err, UnexpectedToken) and err.token.type == "$END":
        return "syntax error: unexpected end of input (unclosed loop?)"
    if isinstance(err, UnexpectedToken):
        tok = err.token
        what = "end of line" if tok.type == "_NL" else f"{tok.value!r}"
        return f"syntax error: unexpected {what}"
    return "syntax error"


def _check_scopes(body, bound: list[str], name: str) -> None:
    for node in body:
        if isinstance(node, Loop):
            if node.var is not None and node.var in bound:
                raise ParseError(f"loop variable {node.var!r} shadows an enclosing loop",
                                 location=f"{name}:{node.line}:{node.col}")
            _check_scopes(node.body, bound + ([node.var] if node.var else []), name)
        elif isinstance(node, Command):
            if node.stamp is not None and bound:
                raise ParseError("@cycle stamps are only allowed outside loops",
                                 location=f"{name}:{node.line}:{node.col}")
            for opname, v in node.args:
                for var, _c in (v.terms if isinstance(v, Affine) else ()):
                    if var not in bound:
                        raise ParseError(f"{opname} uses {var!r}, which no enclosing loop binds",
                                         location=f"{name}:{node.line}:{node.col}")


# ---------------------------------------------------------------- printer -----
def format_program(prog: Program, indent: str = "  ") -> str:
    lines: list[str] = []
    if prog.hw is not None:
        lines.append(f".hw {prog.hw}")
    _emit(prog.body, 0, indent, lines)
    return "\n".join(lines) + ("\n" if lines else "")


def format_command(c: Command) -> str:
    spec = OPS[c.op]
    parts = [f"@{c.stamp}"] if c.stamp is not None else []
    parts.append(c.op)
    for n, v in c.args:
        if n in spec.optional and v == Affine():
            continue
        parts.append(f"{n}={v}")
    text = " ".join(parts)
    return text + (f" #{c.comment}" if c.comment is not None else "")


def _emit(body, depth: int, indent: str, lines: list[str]) -> None:
    pad = indent * depth
    for node in body:
        if isinstance(node, Comment):
            lines.append(f"{pad}#{node.text}")
        elif isinstance(node, Command):
            lines.append(pad + format_command(node))
        else:
            head = f"loop {node.var} {node.count} {{" if node.var else f"loop {node.count} {{"
            lines.append(pad + head + (f" #{node.comment}" if node.comment is not None else ""))
            _emit(node.body, depth + 1, indent, lines)
            lines.append(pad + "}" + (f" #{node.end_comment}" if node.end_comment is not None else ""))


# ------------------------------------------------------- semantic checks ------
def walk(body, env: dict[str, tuple[int, int]] | None = None) -> Iterator[tuple[Command, dict]]:
    """Yield (command, {var: (0, count-1)}) for every command, with its loop box."""
    env = env or {}
    for node in body:
        if isinstance(node, Command):
            yield node, env
        elif isinstance(node, Loop):
            inner = dict(env)
            if node.var:
                inner[node.var] = (0, node.count - 1)
            yield from walk(node.body, inner)


def affine_range(a: Affine, box: dict[str, tuple[int, int]]) -> tuple[int, int]:
    lo = hi = a.const
    for v, c in a.terms:
        vlo, vhi = box[v]
        lo += min(c * vlo, c * vhi)
        hi += max(c * vlo, c * vhi)
    return lo, hi


def check_ranges(prog: Program, hw) -> None:
    """Every operand value any loop iteration produces must fit the preset."""
    pim = hw.pim
    for c, box in walk(prog.body):
        n = dict(c.args).get("n")
        if n is not None and (n.terms or not 1 <= n.const <= pim.token_slots):
            why = ("a token count is a constant >= 1" if n.terms or n.const < 1 else
                   f"n {n.const} out of range (preset {hw.name} buffers {pim.token_slots} tokens"
                   f" per row visit: vector_slots {pim.pu.vector_slots}, acc_sets {pim.pu.acc_sets})")
            raise SpecccError(f"n={n}: {why}", location=f"{prog.name}:{c.line}:{c.col}")
        for name, v in c.args:
            if name == "fn":
                continue
            limit_fn, unit = RANGE_LIMITS[name]
            limit, note = limit_fn(pim), ""
            if name == "slot" and c.op in ("EWMUL", "EWADD"):
                limit, note = pim.gb_slots - ew_slots(pim) + 1, f"; {c.op} reads {ew_slots(pim)} slots"
            if OPS[c.op].tokens and name in TOKEN_STRIDE:
                n = dict(c.args)["n"].const          # a constant: checked first
                limit -= (n - 1) * TOKEN_STRIDE[name](pim)
                note = f"; token {n - 1} of n={n} uses {name} + {n - 1}*{TOKEN_STRIDE[name](pim)}"
            lo, hi = affine_range(v, box)
            bad = lo if lo < 0 else (hi if hi >= limit else None)
            if bad is not None:
                shown = f"{bad}" if not v.terms else f"{bad} (from {name}={v})"
                # a row beyond the banks: the data does not fit (callers cost it as such)
                err = CapacityError if name == "row" else SpecccError
                raise err(f"{name} {shown} out of range (preset {hw.name} has "
                                  f"{limit_fn(pim)} {unit}{note})",
                                  location=f"{prog.name}:{c.line}:{c.col}")
