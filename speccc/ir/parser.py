"""Parse IR text (ir.lark) into a Module. Errors are ParseError at FILE:LINE:COL."""
from __future__ import annotations

import functools
import json
from importlib import resources

import lark
import ml_dtypes
import numpy as np

from speccc.errors import ParseError
from speccc.textio import check_nesting, read_text
from speccc.ir.core import Graph, Module, Op
from speccc.ir.types import DType, parse_type

_DTYPES = {d.value: d for d in DType}


@functools.cache
def _parser() -> lark.Lark:
    grammar = resources.files("speccc.ir").joinpath("ir.lark").read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _loc(filename: str, tok) -> str:
    return f"{filename}:{getattr(tok, 'line', '?')}:{getattr(tok, 'column', '?')}"


class _Attrs(lark.Transformer):
    """Turns attribute subtrees into Python values."""

    def __init__(self, filename: str):
        super().__init__()
        self.filename = filename

    def int(self, c):
        v = int(c[0])
        if not -(1 << 63) <= v < (1 << 64):  # what i64/u64 attributes and constants hold
            raise ParseError(f"integer {c[0]} does not fit in 64 bits",
                             location=_loc(self.filename, c[0]))
        return v

    def float(self, c):
        return float(c[0])

    def string(self, c):
        return _string(c[0], self.filename)

    def true(self, _):
        return True

    def false(self, _):
        return False

    def list(self, c):
        return [x for x in c if x is not None]

    def dtype(self, c):
        return _DTYPES[str(c[0])]

    def dense_body(self, c):
        return [x for x in c if x is not None]

    def dense(self, c):
        tok, items = c
        t = _type(tok, self.filename)
        if not t.is_static:
            raise ParseError(f"dense constant needs a static type, got {t}",
                             location=_loc(self.filename, tok))
        n = int(np.prod(t.shape, dtype=np.int64))
        if len(items) != n:
            raise ParseError(f"dense constant of {t} needs {n} values, got {len(items)}",
                             location=_loc(self.filename, tok))
        if not t.dtype.is_float:
            _check_int_items(items, t, _loc(self.filename, tok))
        arr = np.array(items, dtype=np.float64 if t.dtype.is_float else None)
        return arr.astype(t.dtype.numpy).reshape(t.shape)

    def attr_entry(self, c):
        return (str(c[0]), c[1])

    def attr_dict(self, c):
        return {k: v for k, v in (x for x in c if x is not None)}


def _string(tok, filename: str) -> str:
    """A quoted IR string (JSON escapes); a raw control character in it is an error."""
    try:
        return json.loads(tok)
    except ValueError as e:
        raise ParseError(f"bad string {str(tok)[:40]!r}: {e.msg}",
                         location=_loc(filename, tok)) from None


def _check_int_items(items, t, loc: str) -> None:
    """An integer constant holds integers in its dtype's range: `nan`, `1e309` or 300 in
    an i8 would otherwise be cast to something else silently (INT64_MIN, wrapped)."""
    if t.dtype in (DType.string, DType.bool):
        return
    info = ml_dtypes.iinfo(t.dtype.numpy)
    for x in items:
        if not isinstance(x, int) or isinstance(x, bool):
            raise ParseError(f"dense constant of {t} holds integers, got {x}", location=loc)
        if not info.min <= x <= info.max:
            raise ParseError(f"{x} does not fit in {t.dtype.name}", location=loc)


def _type(tok, filename):
    try:
        return parse_type(str(tok))
    except ValueError as e:
        raise ParseError(str(e), location=_loc(filename, tok)) from None


def parse_module(text: str, filename: str = "<input>") -> Module:
    check_nesting(text, filename)
    try:
        tree = _parser().parse(text)
    except lark.UnexpectedInput as e:
        ctx = e.get_context(text, 40).splitlines()[0].strip() if text else ""
        what = ("unexpected end of input" if isinstance(e, lark.UnexpectedEOF)
                else f"unexpected {getattr(e, 'token', None) or repr(getattr(e, 'char', '?'))}")
        raise ParseError(f"syntax error: {what} near '{ctx}'",
                         location=f"{filename}:{e.line}:{e.column}") from None
    try:
        tree = _Attrs(filename).transform(tree)
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc from None
        raise
    module = Module()
    for gt in tree.children:
        _build_graph(module, gt, filename)
    return module


def _build_graph(module: Module, gt, filename: str) -> Graph:
    name_tok = gt.children[0]
    g = Graph(str(name_tok)[1:])
    if g.name in module.graphs:
        raise ParseError(f"graph @{g.name} defined twice", location=_loc(filename, name_tok))
    env: dict[str, object] = {}
    outputs_decl = []
    body = []
    for ch in gt.children[1:]:
        if ch is None:
            continue
        if isinstance(ch, lark.Tree) and ch.data == "arg":
            tok, ty = ch.children
            if str(tok) in env:
                raise ParseError(f"argument {tok} defined twice", location=_loc(filename, tok))
            env[str(tok)] = g.add_argument(str(tok)[1:], _type(ty, filename))
        elif isinstance(ch, lark.Tree) and ch.data == "output":
            name, ty = ch.children
            outputs_decl.append((_string(name, filename), _type(ty, filename), name))
        elif isinstance(ch, lark.Tree) and ch.data == "graph_attrs":
            g.attrs = dict(ch.children[0])
        else:
            body.append(ch)

    def use(tok):
        v = env.get(str(tok))
        if v is None:
            raise ParseError(f"use of undefined value {tok}", location=_loc(filename, tok))
        return v

    for st in body:
        if st.data == "ret":
            toks = [t for t in st.children if t is not None]
            if len(toks) != len(outputs_decl):
                raise ParseError(f"return has {len(toks)} values, signature declares "
                                 f"{len(outputs_decl)}", location=f"{filename}:{st.meta.line}:1")
            vals = [use(t) for t in toks]
            for v, (nm, ty, tok) in zip(vals, outputs_decl):
                if v.type != ty:
                    raise ParseError(f"output \"{nm}\" declared {ty} but returns {v.type}",
                                     location=_loc(filename, tok))
            g.set_outputs(vals, [d[0] for d in outputs_decl])
            continue
        results_tree, op_tok, *rest = st.children
        operand_toks, attrs, types = [], {}, []
        for x in rest:
            if isinstance(x, dict):
                attrs = x
            elif x is None:
                continue
            elif x.type == "VALUE_ID":
                operand_toks.append(x)
            else:
                types.append(_type(x, filename))
        res_toks = results_tree.children
        if len(res_toks) != len(types):
            raise ParseError(f"{len(res_toks)} results but {len(types)} types",
                             location=_loc(filename, op_tok))
        op = Op(str(op_tok), [use(t) for t in operand_toks], attrs, types,
                loc=f"{filename}:{op_tok.line}")
        g.add_op(op)
        for tok, r in zip(res_toks, op.results):
            if str(tok) in env:
                raise ParseError(f"value {tok} defined twice", location=_loc(filename, tok))
            env[str(tok)] = r
    module.add_graph(g)
    return g


def parse_file(path) -> Module:
    return parse_module(read_text(path), str(path))
