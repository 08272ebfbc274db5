"""What passes and the runtime need to know about a decode graph: its logits, KV pairs,
vocabulary, weight bytes and context length."""
from __future__ import annotations

from dataclasses import dataclass

from speccc.errors import SpecccError

PASS_THROUGH = ("cast", "identity")


@dataclass(frozen=True)
class KvPair:
    past: str        # graph argument
    present: str     # graph output
    axis: int        # sequence axis
    token_bytes: int  # bytes one position adds to this tensor


def kv_pairs(g) -> list[KvPair]:
    pairs = g.attrs.get("kv_cache") or []
    if not pairs:
        raise SpecccError(f"@{g.name} has no KV cache (kv_cache attribute): speculative "
                          "decoding needs decode-mode models with past_key_values inputs")
    outs = dict(zip(g.output_names, g.outputs))
    out = []
    for past, present, axis in pairs:
        t = outs[present].type
        # one position; other symbolic dims are the batch (one request): 1
        shape = [1 if i == axis or not isinstance(d, int) else d for i, d in enumerate(t.shape)]
        out.append(KvPair(past, present, int(axis), int(t.with_shape(tuple(shape)).nbytes())))
    return out


def logits_output(g) -> str:
    if "logits" in g.output_names:
        return "logits"
    presents = {p[1] for p in g.attrs.get("kv_cache") or []}
    rest = [n for n in g.output_names if n not in presents]
    if len(rest) != 1:
        raise SpecccError(f"@{g.name}: cannot tell the logits output among {rest}; "
                          "name it 'logits'")
    return rest[0]


def vocab(g) -> int:
    name = logits_output(g)
    v = dict(zip(g.output_names, g.outputs))[name].type.shape[-1]
    if not isinstance(v, int):
        raise SpecccError(f"@{g.name}: logits vocabulary dim is symbolic ({v})")
    return v


def weight_bytes(g) -> int:
    total = 0
    for op in g.ops():
        if op.name == "weight":
            n = op.result.type.nbytes()
            total += n if isinstance(n, int) else 0
    return total


def position_table_rows(g) -> int | None:
    """Rows of a table gathered by `position_ids` (learned positions, rotary caches),
    minus a constant offset added to the ids on the way: the positions the model has."""
    args = {a.result.name: a.result for a in g.arguments}
    pos = args.get("position_ids")
    if pos is None:
        return None
    frontier, offset, best = [(pos, 0)], {}, None
    while frontier:
        v, off = frontier.pop()
        for user, idx in v.users:
            if user.name == "gather" and idx == 1 and user.operands[0].op is not None \
                    and user.operands[0].op.name in ("weight", "const"):
                rows = user.operands[0].type.shape[int(user.attrs.get("axis", 0))]
                if isinstance(rows, int):
                    best = min(best or rows - off, rows - off)
            elif user.name in PASS_THROUGH + ("reshape", "unsqueeze", "squeeze"):
                frontier.append((user.result, off))
            elif user.name == "add" and user not in offset:
                other = user.operands[1 - idx]
                if other.op is not None and other.op.name == "const":
                    offset[user] = True
                    frontier.append((user.result, off + int(other.op.attrs["value"].max())))
    return best


def max_context(g, metadata: dict | None = None) -> int | None:
    """Positions the model supports: its position table, else the `speccc.spec`
    metadata zoo models carry (rotary computed on the fly has no table), else None."""
    rows = position_table_rows(g)
    if rows is not None:
        return rows
    if "max_context" in g.attrs:   # recorded when the module was written as IR text
        return int(g.attrs["max_context"])
    if metadata and "speccc.spec" in metadata:
        import json
        return int(json.loads(metadata["speccc.spec"]).get("max_positions", 0)) or None
    return None
