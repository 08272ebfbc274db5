"""Timeline plot of a `speccc run --trace` file (matplotlib, Agg backend)."""
from __future__ import annotations

import io
import json

from speccc.errors import SpecccError

COLORS = {"prefill": "#7f7f7f", "draft": "#1f77b4", "predraft": "#17becf",
          "verify": "#d62728", "spec": "#d62728", "nonspec": "#ff7f0e",
          "kv_rollback": "#9467bd", "kv_copy": "#8c564b", "kv_append": "#9467bd"}


def load_trace(path) -> dict:
    from speccc.textio import check_nesting, read_text
    text = read_text(path)
    check_nesting(text, str(path))
    try:
        data = json.loads(text)
        if not isinstance(data.get("traceEvents"), list):
            raise TypeError("traceEvents is not a list")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SpecccError(f"not a speccc trace (Chrome trace JSON): {e}",
                          location=str(path)) from None
    return data


MAX_ROWS = 512  # one row per resource; a real run has a few dozen


def _plain(text) -> str:
    """User text shown literally: matplotlib reads `$...$` as math (and fails on `$x$ $`)."""
    return str(text).replace("$", r"\$")


def _finite(x) -> float:
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"non-finite time {x}")
    return x


def _layout(ev: list) -> tuple[dict, dict, list]:
    """Thread names, bars {(row, kind, cancelled): [(start, width)]}, cancel marks."""
    names = {e["tid"]: str(e["args"]["name"]) for e in ev
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    if len(names) > MAX_ROWS:
        raise ValueError(f"{len(names)} resources (at most {MAX_ROWS})")
    tids = sorted(names)
    row = {t: len(tids) - 1 - i for i, t in enumerate(tids)}
    bars: dict = {}
    for e in ev:
        if e.get("ph") != "X":
            continue
        a = e.get("args", {})
        key = (row[e["tid"]], str(a.get("run_kind", "op")), bool(a.get("cancelled")))
        bars.setdefault(key, []).append((_finite(e["ts"]) / 1e3, _finite(e["dur"]) / 1e3))
    xs = [(_finite(e["ts"]) / 1e3, row[e["tid"]]) for e in ev if e.get("ph") == "i"]
    return names, bars, xs


def plot_trace(trace: dict, title: str = "") -> bytes:
    """PNG bytes: one row per resource, one bar per slice, coloured by run kind;
    cancelled work hatched, cancellations marked with x."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecccError("speccc plot needs matplotlib (pip install matplotlib)") from None
    try:
        names, bars, xs = _layout(trace["traceEvents"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SpecccError(f"malformed trace event ({type(e).__name__}: {e})") from None
    tids = sorted(names)
    row = {t: len(tids) - 1 - i for i, t in enumerate(tids)}
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(tids) + 1.5))
    seen = set()
    for (y, kind, cancelled), spans in sorted(bars.items()):
        label = kind if kind not in seen else None
        seen.add(kind)
        ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=COLORS.get(kind, "#2ca02c"),
                       hatch="//" if cancelled else None, edgecolor="black" if cancelled
                       else "none", linewidth=0.3, label=label)
    if xs:
        ax.scatter([x for x, _ in xs], [y for _, y in xs], marker="x", color="black",
                   s=18, zorder=3, label="cancel")
    ax.set_yticks([row[t] for t in tids], [_plain(names[t]) for t in tids])
    ax.set_xlabel("time (ms)")
    ax.set_title(_plain(title) or "speccc run timeline (hatched: cancelled)")
    ax.legend(loc="upper right", fontsize=7, ncols=4)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()
