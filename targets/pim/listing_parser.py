"""The listing parser (lark grammar listing.lark): text -> Program, with every error a
ParseError located as NAME:LINE:COL. listing.py is the module to import from.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from speccc.errors import ParseError
from speccc.textio import check_nesting
from speccc.targets.pim.isa import AF_FUNCTIONS, OPERAND_ORDER, OPS
from speccc.targets.pim.listing_model import Affine, Command, Comment, Loop, Program


# ----------------------------------------------------------------- parser -----
@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (resources.files("speccc.targets.pim") / "listing.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


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
