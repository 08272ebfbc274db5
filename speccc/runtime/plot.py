"""Timeline plots of `speccc run --trace` files (matplotlib, Agg backend).

One panel per trace on one shared time axis (compare runs by overlaying their traces),
one row per resource, bars coloured by run kind, cancelled work hatched, cancellations
marked x, and each emitted token a tick on the panel's top row. Bars narrower than a
pixel are widened to one, so short draft runs stay visible beside a 7B target's verify;
`window` zooms to a time range.
"""
from __future__ import annotations

import io
import json
from speccc.errors import SpecccError

COLORS = {"prefill": "#7f7f7f", "draft": "#1f77b4", "predraft": "#17becf",
          "verify": "#d62728", "spec": "#d62728", "nonspec": "#ff7f0e",
          "kv_rollback": "#9467bd", "kv_copy": "#8c564b", "kv_append": "#9467bd"}
WIDTH_IN, DPI = 12.0, 120


def load_trace(path) -> dict:
    from speccc.textio import check_nesting, read_text
    text = read_text(path)
    check_nesting(text, str(path))
    try:
        data = json.loads(text)
        if not isinstance(data.get("traceEvents"), list):
            raise TypeError("traceEvents is not a list")
        rows = _rows(data)
        for e in data["traceEvents"]:
            if e.get("ph") in ("X", "i"):
                _finite(e["ts"]), _finite(e.get("dur", 0))
                if e["tid"] not in rows:
                    raise KeyError(f"event on thread {e['tid']!r} with no thread_name")
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


def parse_window(text: str | None) -> tuple[float, float] | None:
    """`--window 0.5:2.5` (ms) -> (0.5, 2.5)."""
    if not text:
        return None
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise SpecccError(f"--window expects START:END in ms, got {text!r}") from None
    if not lo < hi:
        raise SpecccError(f"--window START must be below END, got {text!r}")
    return lo, hi


def run_title(trace: dict) -> str:
    rep = trace.get("otherData", {}).get("report", {})
    if not rep:
        return "speccc run"
    gamma = f" γ={rep['gamma']}" if rep.get("schedule") != "none" else ""
    return (f"{rep.get('schedule')}{gamma} on {rep.get('hw')}: "
            f"{rep.get('generated_tokens')} tokens, {rep.get('time_ms', 0):.3g} ms")


def plot_traces(traces: list[dict], title: str = "", window=None) -> bytes:
    """PNG bytes of one panel per trace (see the module docstring)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecccError("speccc plot needs matplotlib (pip install matplotlib)") from None
    rows = [_rows(t) for t in traces]
    heights = [0.45 * (len(r) + 1) + 0.6 for r in rows]
    fig, axes = plt.subplots(len(traces), 1, sharex=True, squeeze=False,
                             figsize=(WIDTH_IN, sum(heights) + 1.0),
                             gridspec_kw={"height_ratios": heights})
    end = max(_end(t) for t in traces)
    lo, hi = window or (0.0, end)
    px = (hi - lo) / (WIDTH_IN * DPI * 0.8)   # one pixel in ms
    kinds: set = set()
    for ax, trace, names in zip(axes[:, 0], traces, rows):
        kinds |= _draw(ax, trace, names, px)
        ax.set_title(_plain(run_title(trace)), fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlim(lo, hi)
    axes[-1, 0].set_xlabel("time (ms)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS.get(k, "#2ca02c"), label=k)
               for k in sorted(kinds)]
    handles += [plt.Line2D([], [], marker="x", ls="", color="black", label="cancel"),
                plt.Line2D([], [], marker="|", ls="", color="black", label="token")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    fig.suptitle(_plain(title) or "speccc run timeline (hatched: cancelled)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_trace(trace: dict, title: str = "") -> bytes:
    return plot_traces([trace], title)


def _rows(trace: dict) -> dict:
    """tid -> resource name, in trace order."""
    names = {e["tid"]: str(e["args"]["name"]) for e in trace["traceEvents"]
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    if len(names) > MAX_ROWS:
        raise ValueError(f"{len(names)} resources (at most {MAX_ROWS})")
    return names


def _end(trace: dict) -> float:
    ends = [(e["ts"] + e.get("dur", 0)) / 1e3 for e in trace["traceEvents"]
            if e.get("ph") in ("X", "i")]
    return max(ends, default=1.0)


def _draw(ax, trace: dict, names: dict, px: float) -> set:
    tids = sorted(names)
    row = {t: len(tids) - 1 - i for i, t in enumerate(tids)}
    bars: dict = {}
    for e in trace["traceEvents"]:
        if e.get("ph") != "X":
            continue
        a = e.get("args", {})
        key = (row[e["tid"]], a.get("run_kind", "op"), bool(a.get("cancelled")))
        bars.setdefault(key, []).append((e["ts"] / 1e3, max(e["dur"] / 1e3, px)))
    for (y, kind, cancelled), spans in sorted(bars.items()):
        ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=COLORS.get(kind, "#2ca02c"),
                       hatch="//" if cancelled else None,
                       edgecolor="black" if cancelled else "none", linewidth=0.3)
    xs = [(e["ts"] / 1e3, row[e["tid"]]) for e in trace["traceEvents"]
          if e.get("ph") == "i"]
    if xs:
        ax.scatter([x for x, _ in xs], [y for _, y in xs], marker="x", color="black",
                   s=18, zorder=3)
    tokens = trace.get("otherData", {}).get("report", {}).get("token_times_ms") or []
    top = len(tids)
    if tokens:
        ax.scatter(tokens, [top] * len(tokens), marker="|", color="black", s=60)
    ax.set_yticks([row[t] for t in tids] + [top],
                  [_plain(names[t]) for t in tids] + ["tokens"])
    ax.set_ylim(-0.7, top + 0.7)
    return {k for _, k, _ in bars}
