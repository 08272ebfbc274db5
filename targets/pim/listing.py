"""PIM listings: the Program data model (listing_model.py), the lark parser
(listing_parser.py), the canonical printer and the range checks.

A listing is one command a line with explicit operands (`MAC.ab ch=0 row=12 col=3 slot=3
acc=0`), `#` comments, optional `@CYCLE` issue stamps, and `loop [VAR] COUNT { ... }`
blocks. Operand values are affine in the enclosing loop variables (`col=c`,
`src=64*t+c`, `row=100+4*q+t`), so a row stream is a loop, not 64 lines. Printing is
canonical and byte-deterministic; `parse(format_program(p)) == p`.
"""
from __future__ import annotations

from typing import Iterator

from speccc.errors import CapacityError, SpecccError
from speccc.targets.pim.isa import OPS, RANGE_LIMITS, TOKEN_STRIDE, ew_slots
from speccc.targets.pim.listing_model import (MAX_COMMANDS, Affine, Command, Comment, Loop,
                                              Program, bind_var, check_work, cmd,
                                              keep_commands, loop,
                                              loop_or_inline, shift_field, work)
from speccc.targets.pim.listing_parser import parse

# The one module callers import listings from: the model (listing_model.py) and the
# parser (listing_parser.py) are re-exported here beside the printer and the checks.
__all__ = ["MAX_COMMANDS", "Affine", "Command", "Comment", "Loop", "Program", "affine_range",
           "bind_var", "check_ranges", "check_work", "cmd", "format_command",
           "format_program", "keep_commands", "loop", "loop_or_inline", "parse", "shift_field", "walk", "work"]


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
