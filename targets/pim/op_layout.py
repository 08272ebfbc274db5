"""What PIM can lower and where an op's data live: the op tables (GEMV, attention,
elementwise), why an op cannot lower, its dimensions from operand shapes, and its
regions (weights, KV cache) stacked from the placement's base row.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


from speccc.errors import SpecccError
from speccc.targets.pim import kv_layout as kv
from speccc.targets.pim.layout import plan_matrix


GEMV_OPS = ("linear", "matmul", "matmul_nbits", "gated_mlp")
ATTENTION_OPS = ("attention",)
PLACED_OPS = GEMV_OPS + ATTENTION_OPS
ELEMENTWISE = {
    "add": [("load", 0), ("add", 1)],
    "mul": [("load", 0), ("mul", 1)],
    "relu": [("load", 0), ("af", "relu")],
    "gelu": [("load", 0), ("af", "gelu")],
    "swish": [("load", 0), ("af", "silu")],
    "swiglu": [("load", 0), ("af", "silu"), ("mul", 1)],
}
PIM_LOWERABLE = frozenset(PLACED_OPS) | frozenset(ELEMENTWISE)
MLP_AF = {"silu": "silu", "gelu_tanh": "gelu"}
PLACEMENT_ATTRS = ("pim_base_row", "pim_rows", "pim_channels", "pim_max_context")


def unsupported_reason(name: str, attrs: dict, shapes: list | None = None) -> str | None:
    """Why op `name` cannot run on PIM (None if it can; `shapes`: operand shapes, when
    known, for the checks that depend on them)."""
    if name not in PIM_LOWERABLE:
        return (f"no PIM lowering for '{name}' (PIM runs: "
                f"{', '.join(sorted(PIM_LOWERABLE))})")
    if name == "gelu" and attrs.get("approximate", "none") != "tanh":
        return "PIM's AF gelu is the tanh form; erf gelu has no PIM lowering"
    if name in ("swish", "swiglu") and float(attrs.get("alpha", 1.0)) != 1.0:
        return f"{name} with alpha != 1 has no PIM lowering (AF silu is alpha 1)"
    if name == "matmul" and shapes is not None and (len(shapes) < 2 or len(shapes[1]) != 2):
        return "matmul on PIM needs a 2-D stored weight as its second operand"
    return None


# ------------------------------------------------------------------ layouts ----
@dataclass(frozen=True)
class Region:
    name: str
    layout: object            # Placement | KeyLayout | ValueLayout
    rows: int
    channels: int             # channels of the window it touches (from the start)


def op_dims(name: str, attrs: dict, shapes: list) -> dict:
    """The sizes placement and codegen need, from operand shapes (ints)."""
    if name in ("linear", "matmul"):
        w = shapes[1]
        k, n = (w[1], w[0]) if attrs.get("transpose_w") else (w[0], w[1])
        return {"M": n, "K": k}
    if name == "matmul_nbits":
        return {"M": attrs["N"], "K": attrs["K"]}
    if name == "gated_mlp":
        k = shapes[0][-1]
        f = shapes[1][1] // 2 if len(shapes) == 3 else shapes[1][1]
        return {"K": k, "F": f, "N": shapes[-1][1]}
    if name == "attention":
        q, k = shapes[0], shapes[1]
        return {"B": q[0], "H": q[1], "T": q[2], "D": q[3], "G": k[1], "S": k[2]}
    return {}


def op_layouts(name: str, hw, dims: dict, *, base: int = 0, window=None,
               max_context: int | None = None) -> list[Region]:
    """The regions of a placed op, stacked from `base` within the channel `window`."""
    p = hw.pim
    window = tuple(range(p.channels)) if window is None else tuple(window)
    regions: list[Region] = []

    def gemv(rname: str, M: int, K: int) -> None:
        at = base + sum(r.rows for r in regions)
        nat = plan_matrix(hw, M, K)
        n = min(len(nat.channels), len(window))
        pl = plan_matrix(hw, M, K, base=0, channels=window[:n])
        pl = dataclasses.replace(pl, base=at)
        regions.append(Region(rname, pl, pl.rows_used, n))

    if name in ("linear", "matmul", "matmul_nbits"):
        gemv("W", dims["M"], dims["K"])
    elif name == "gated_mlp":
        gemv("gate_up", 2 * dims["F"], dims["K"])
        gemv("down", dims["N"], dims["F"])
    elif name == "attention":
        if max_context is None:
            raise SpecccError("attention placement needs max_context")
        # each request of the batch gets its own keys and values region (a KV row never
        # holds two requests' tokens), stacked request after request
        for r in range(attention_requests(dims)):
            at = base + sum(x.rows for x in regions)
            kl = kv.plan_keys(hw, dims["D"], dims["G"], max_context, base=at, channels=window)
            regions.append(Region(f"keys{r}" if r else "keys", kl, kl.rows, len(window)))
            vl = kv.plan_values(hw, dims["D"], dims["G"], max_context, base=at + kl.rows,
                                channels=window)
            regions.append(Region(f"values{r}" if r else "values", vl, vl.rows,
                                  vl.groups * vl.per_head))
    return regions


def attention_requests(dims: dict) -> int:
    """Requests (batch rows) an attention op's placement holds KV for: its bound batch
    dimension, 1 when unbound."""
    return dims.get("B") or 1
