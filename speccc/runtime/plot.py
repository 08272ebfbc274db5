"""Timeline plot of a `speccc run --trace` file (matplotlib, Agg backend)."""
from __future__ import annotations

import io
import json
from pathlib import Path

from speccc.errors import SpecccError

COLORS = {"prefill": "#7f7f7f", "draft": "#1f77b4", "predraft": "#17becf",
          "verify": "#d62728", "spec": "#d62728", "nonspec": "#ff7f0e",
          "kv_rollback": "#9467bd", "kv_copy": "#8c564b", "kv_append": "#9467bd"}


def load_trace(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SpecccError("no such file", location=str(path))
    try:
        data = json.loads(p.read_text())
        data["traceEvents"]
    except (ValueError, KeyError, TypeError) as e:
        raise SpecccError(f"not a speccc trace (Chrome trace JSON): {e}",
                          location=str(path)) from None
    return data


def plot_trace(trace: dict, title: str = "") -> bytes:
    """PNG bytes: one row per resource, one bar per slice, coloured by run kind;
    cancelled work hatched, cancellations marked with x."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecccError("speccc plot needs matplotlib (pip install matplotlib)") from None
    ev = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    tids = sorted(names)
    row = {t: len(tids) - 1 - i for i, t in enumerate(tids)}
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(tids) + 1.5))
    bars: dict = {}
    for e in ev:
        if e.get("ph") != "X":
            continue
        a = e.get("args", {})
        key = (row[e["tid"]], a.get("run_kind", "op"), bool(a.get("cancelled")))
        bars.setdefault(key, []).append((e["ts"] / 1e3, e["dur"] / 1e3))
    seen = set()
    for (y, kind, cancelled), spans in sorted(bars.items()):
        label = kind if kind not in seen else None
        seen.add(kind)
        ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=COLORS.get(kind, "#2ca02c"),
                       hatch="//" if cancelled else None, edgecolor="black" if cancelled
                       else "none", linewidth=0.3, label=label)
    xs = [(e["ts"] / 1e3, row[e["tid"]]) for e in ev if e.get("ph") == "i"]
    if xs:
        ax.scatter([x for x, _ in xs], [y for _, y in xs], marker="x", color="black",
                   s=18, zorder=3, label="cancel")
    ax.set_yticks([row[t] for t in tids], [names[t] for t in tids])
    ax.set_xlabel("time (ms)")
    ax.set_title(title or "speccc run timeline (hatched: cancelled)")
    ax.legend(loc="upper right", fontsize=7, ncols=4)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return buf.getvalue()
