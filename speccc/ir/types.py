"""Element types, symbolic dimensions and tensor types.

A dimension is an `int` or a `Sym`: a polynomial with integer coefficients over named
symbols (`T` new tokens, `P` past length, `B` batch, ...). Polynomials are enough for
every shape an LLM graph computes (P+T, 64*T, T*P after a flatten) and, unlike a general
CAS, print canonically and hash cheaply; that is why this is hand-written and not sympy.
Symbol names are upper case (`[A-Z][A-Z0-9_]*`) so `tensor<1x?Tx64xf32>` splits on the
lower-case `x` without ambiguity.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from enum import Enum
from typing import Iterable, Mapping, Union

import numpy as np

SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9_]*\Z")


class DType(Enum):
    f64 = "f64"
    f32 = "f32"
    f16 = "f16"
    bf16 = "bf16"
    i64 = "i64"
    i32 = "i32"
    i16 = "i16"
    i8 = "i8"
    u64 = "u64"
    u32 = "u32"
    u16 = "u16"
    u8 = "u8"
    i4 = "i4"
    u4 = "u4"
    i2 = "i2"
    u2 = "u2"
    # Narrow floats (OCP / ONNX): fn = finite only (no inf), uz = unsigned zero (one NaN).
    f8e4m3fn = "f8e4m3fn"
    f8e4m3fnuz = "f8e4m3fnuz"
    f8e5m2 = "f8e5m2"
    f8e5m2fnuz = "f8e5m2fnuz"
    f8e8m0 = "f8e8m0"  # exponent only (MX block scales), unsigned, no inf
    f4e2m1 = "f4e2m1"
    bool = "i1"
    string = "str"

    @property
    def numpy(self) -> np.dtype:
        return _numpy_table()[self]

    @property
    def itemsize_bits(self) -> int:
        return _BITS[self]

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @staticmethod
    def from_numpy(dt) -> "DType":
        dt = np.dtype(dt)
        for k, v in _numpy_table().items():
            if v == dt:
                return k
        if dt.kind in "UOS":
            return DType.string
        raise ValueError(f"no speccc dtype for numpy dtype {dt}")


@cache
def is_float_dtype(dt) -> bool:
    """A floating-point numpy dtype, ml_dtypes' included: bfloat16 and the float8/float4
    types have kind "V" (numpy does not know them as floats), so `dtype.kind == "f"`
    alone misses bf16 models."""
    dt = np.dtype(dt)
    return dt.kind == "f" or (dt.kind == "V" and dt.type.__module__ == "ml_dtypes"
                              and "float" in dt.name)


@cache
def _numpy_table() -> dict:
    """DType -> numpy dtype. ml_dtypes is imported here, on first use, not at import:
    the CLI's start-up must not pay for it (tests/test_startup.py). Cached: `.numpy` is
    read on every op run (casts, norms), and rebuilding the table cost ~20 us a time."""
    import ml_dtypes
    return {
        DType.f64: np.dtype(np.float64), DType.f32: np.dtype(np.float32),
        DType.f16: np.dtype(np.float16), DType.bf16: np.dtype(ml_dtypes.bfloat16),
        DType.i64: np.dtype(np.int64), DType.i32: np.dtype(np.int32),
        DType.i16: np.dtype(np.int16), DType.i8: np.dtype(np.int8),
        DType.u64: np.dtype(np.uint64), DType.u32: np.dtype(np.uint32),
        DType.u16: np.dtype(np.uint16), DType.u8: np.dtype(np.uint8),
        DType.i4: np.dtype(ml_dtypes.int4), DType.u4: np.dtype(ml_dtypes.uint4),
        DType.i2: np.dtype(ml_dtypes.int2), DType.u2: np.dtype(ml_dtypes.uint2),
        DType.f8e4m3fn: np.dtype(ml_dtypes.float8_e4m3fn),
        DType.f8e4m3fnuz: np.dtype(ml_dtypes.float8_e4m3fnuz),
        DType.f8e5m2: np.dtype(ml_dtypes.float8_e5m2),
        DType.f8e5m2fnuz: np.dtype(ml_dtypes.float8_e5m2fnuz),
        DType.f8e8m0: np.dtype(ml_dtypes.float8_e8m0fnu),
        DType.f4e2m1: np.dtype(ml_dtypes.float4_e2m1fn),
        DType.bool: np.dtype(np.bool_), DType.string: np.dtype(object),
    }


_FLOATS = frozenset({DType.f64, DType.f32, DType.f16, DType.bf16, DType.f8e4m3fn,
                     DType.f8e4m3fnuz, DType.f8e5m2, DType.f8e5m2fnuz, DType.f8e8m0,
                     DType.f4e2m1})
# Sub-byte types are stored packed (ONNX packs int4/uint4/float4 2 per byte, int2 4).
_PACKED_BITS = {DType.i4: 4, DType.u4: 4, DType.f4e2m1: 4, DType.i2: 2, DType.u2: 2}
_WIDE_BITS = {DType.f64: 64, DType.i64: 64, DType.u64: 64, DType.f32: 32, DType.i32: 32,
              DType.u32: 32, DType.f16: 16, DType.bf16: 16, DType.i16: 16, DType.u16: 16,
              DType.string: 64}
# Static, so asking a width does not import ml_dtypes; every other type is one byte.
_BITS = {d: _PACKED_BITS.get(d, _WIDE_BITS.get(d, 8)) for d in DType}


Monomial = tuple  # sorted tuple of symbol names, repeated for powers; () is the constant


@dataclass(frozen=True)
class Sym:
    """Polynomial over symbols with integer coefficients; never a plain constant."""

    terms: tuple  # sorted tuple of (monomial, coef) with coef != 0

    @staticmethod
    def of(name: str) -> "Sym":
        if not SYMBOL_RE.match(name):
            raise ValueError(f"symbol name {name!r} must match [A-Z][A-Z0-9_]*")
        return Sym((((name,), 1),))

    @staticmethod
    def _make(terms: Mapping) -> "Dim":
        items = tuple(sorted((m, c) for m, c in terms.items() if c != 0))
        if not items:
            return 0
        if len(items) == 1 and items[0][0] == ():
            return items[0][1]
        return Sym(items)

    def _dict(self) -> dict:
        return dict(self.terms)

    @property
    def symbols(self) -> set[str]:
        return {s for m, _ in self.terms for s in m}

    def __add__(self, other: "Dim") -> "Dim":
        d = self._dict()
        for m, c in _terms(other):
            d[m] = d.get(m, 0) + c
        return Sym._make(d)

    __radd__ = __add__

    def __neg__(self) -> "Dim":
        return Sym._make({m: -c for m, c in self.terms})

    def __sub__(self, other: "Dim") -> "Dim":
        return self + (-other if isinstance(other, Sym) else -other)

    def __rsub__(self, other: "Dim") -> "Dim":
        return (-self) + other

    def __mul__(self, other: "Dim") -> "Dim":
        d: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in _terms(other):
                m = tuple(sorted(m1 + m2))
                d[m] = d.get(m, 0) + c1 * c2
        return Sym._make(d)

    __rmul__ = __mul__

    def divide(self, other: "Dim") -> "Dim | None":
        """Exact division by an int or a polynomial, else None."""
        ot = list(_terms(other))
        if len(ot) > 1:
            return _poly_divide(dict(self.terms), dict(ot))
        if len(ot) != 1 or ot[0][1] == 0:
            return None
        (om, oc), d = ot[0], {}
        for m, c in self.terms:
            rest = list(m)
            for s in om:
                if s not in rest:
                    return None
                rest.remove(s)
            if c % oc:
                return None
            d[tuple(rest)] = c // oc
        return Sym._make(d)

    def evaluate(self, bindings: Mapping[str, int]) -> "Dim":
        d: dict = {}
        for m, c in self.terms:
            rest, coef = [], c
            for s in m:
                if s in bindings:
                    coef *= int(bindings[s])
                else:
                    rest.append(s)
            key = tuple(rest)
            d[key] = d.get(key, 0) + coef
        return Sym._make(d)

    def __str__(self) -> str:
        if len(self.terms) == 1 and self.terms[0][1] == 1 and len(self.terms[0][0]) == 1:
            return "?" + self.terms[0][0][0]
        return "?{" + self.expr() + "}"

    def expr(self) -> str:
        parts = []
        # Higher-degree terms first, the constant last: `P+T+1`, `2*T`.
        for m, c in sorted(self.terms, key=lambda t: (-len(t[0]), t[0])):
            body = "*".join(m)
            if not m:
                s = str(abs(c))
            elif abs(c) == 1:
                s = body
            else:
                s = f"{abs(c)}*{body}"
            parts.append(("-" if c < 0 else "+") + s)
        text = "".join(parts)
        return text[1:] if text.startswith("+") else text


Dim = Union[int, Sym]


def _poly_divide(num: dict, den: dict) -> "Dim | None":
    """Exact num / den over Z[symbols] by long division, else None.

    Reshape's -1 needs e.g. 64*(P+T) / (16*(P+T)) = 4. Leading terms are taken in
    graded lex order; if den divides num exactly, LT(num) = LT(q) * LT(den) at every
    step, so a leading term that does not divide means there is no exact quotient.
    """
    syms = sorted({s for m in list(num) + list(den) for s in m})

    def order(m):
        return (len(m), tuple(m.count(s) for s in syms))

    lead = max(den, key=order)
    rem, quot = dict(num), {}
    while rem:
        top = max(rem, key=order)
        rest = list(top)
        for s in lead:
            if s not in rest:
                return None
            rest.remove(s)
        if rem[top] % den[lead]:
            return None
        t, c = tuple(rest), rem[top] // den[lead]
        quot[t] = quot.get(t, 0) + c
        for m, cm in den.items():
            k = tuple(sorted(t + m))
            rem[k] = rem.get(k, 0) - c * cm
            if rem[k] == 0:
                del rem[k]
    return Sym._make(quot)


def _terms(d: Dim) -> Iterable:
    if isinstance(d, Sym):
        return d.terms
    return (((), int(d)),) if d else ()


def dim_add(a: Dim, b: Dim) -> Dim:
    return a + b if isinstance(a, Sym) or isinstance(b, Sym) else int(a) + int(b)


def dim_mul(a: Dim, b: Dim) -> Dim:
    return a * b if isinstance(a, Sym) or isinstance(b, Sym) else int(a) * int(b)


def dim_div(a: Dim, b: Dim) -> Dim | None:
    """Exact a / b, or None when it does not divide."""
    if isinstance(a, Sym):
        return a.divide(b)
    if isinstance(b, Sym):
        return None
    if b == 0 or a % b:
        return None
    return a // b


def dim_prod(dims: Iterable[Dim]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dim_eval(d: Dim, bindings: Mapping[str, int]) -> Dim:
    return d.evaluate(bindings) if isinstance(d, Sym) else d


def parse_dim_expr(text: str) -> Dim:
    """Parse `P+T`, `2*T-1`, `T*P` (the body of `?{...}`)."""
    text = text.replace(" ", "")
    if not re.fullmatch(r"[-+]?[A-Z0-9_*]+([-+][A-Z0-9_*]+)*", text):
        raise ValueError(f"bad dimension expression {text!r}")
    total: Dim = 0
    for sign, term in re.findall(r"([-+]?)([A-Z0-9_*]+)", text):
        value: Dim = -1 if sign == "-" else 1
        for factor in term.split("*"):
            value = dim_mul(value, int(factor) if factor.isdigit() else Sym.of(factor))
        total = dim_add(total, value)
    return total


@dataclass(frozen=True)
class TensorType:
    shape: tuple  # of Dim
    dtype: DType

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def symbols(self) -> set[str]:
        return {s for d in self.shape if isinstance(d, Sym) for s in d.symbols}

    def numel(self) -> Dim:
        return dim_prod(self.shape)

    def nbytes(self, bindings: Mapping[str, int] | None = None) -> Dim:
        n = dim_eval(self.numel(), bindings or {})
        return dim_div(dim_mul(n, self.dtype.itemsize_bits), 8) or 0

    def bind(self, bindings: Mapping[str, int]) -> "TensorType":
        return TensorType(tuple(dim_eval(d, bindings) for d in self.shape), self.dtype)

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        dims = "".join(f"{d}x" for d in self.shape)
        return f"tensor<{dims}{self.dtype.value}>"


_DTYPE_BY_NAME = {d.value: d for d in DType}


MAX_DIM = 1 << 48  # 256 T elements per dim; products of a few stay within int64


def parse_type(text: str) -> TensorType:
    """Parse `tensor<1x?Tx?{P+T}xf32>`."""
    m = re.fullmatch(r"tensor<(.*)>", text.strip())
    if not m:
        raise ValueError(f"bad type {text!r}: expected tensor<...>")
    body, dims = m.group(1), []
    # Dims never contain a lower-case x, so a left-to-right scan splits them.
    tokens = re.findall(r"x|\?\{[^}]*\}|\?[A-Z][A-Z0-9_]*|\d+|[a-z][a-z0-9]*", body)
    if "".join(tokens) != body:
        raise ValueError(f"bad type {text!r}")
    for i, tok in enumerate(tokens):
        if i % 2 == 1:
            if tok != "x":
                raise ValueError(f"bad type {text!r}: expected 'x' between dims")
            continue
        if i == len(tokens) - 1:
            if tok not in _DTYPE_BY_NAME:
                raise ValueError(f"bad type {text!r}: unknown element type {tok!r}")
            return TensorType(tuple(dims), _DTYPE_BY_NAME[tok])
        if tok.isdigit():
            if len(tok) > 15 or int(tok) > MAX_DIM:  # sizes must stay numpy (int64) numbers
                raise ValueError(f"bad type {text!r}: dimension {tok} is larger than {MAX_DIM}")
            dims.append(int(tok))
        elif tok.startswith("?{"):
            dims.append(parse_dim_expr(tok[2:-1]))
        elif tok.startswith("?"):
            dims.append(Sym.of(tok[1:]))
        else:
            raise ValueError(f"bad type {text!r}: bad dimension {tok!r}")
    raise ValueError(f"bad type {text!r}: missing element type")
