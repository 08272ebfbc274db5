"""What `speccc run` prints and writes for a run: the report table, the schedules-compared
table, the decoded text beside the token ids, one trace path per compared run."""
from __future__ import annotations

from speccc.cli.main import console


def with_text(rep: dict, prompts, tok) -> dict:
    """The decoded completion beside the ids: `text` (request 0, or the only prompt) and,
    for a batch, each request's `prompt` and `text`."""
    from speccc import text as textio
    out = {"text": textio.completion(tok, rep["tokens"]), "prompt": prompts[0].text, **rep}
    if "requests" in rep:
        out["requests"] = [{"prompt": p.text, "text": textio.completion(tok, r["tokens"]),
                            **r} for p, r in zip(prompts, rep["requests"])]
    return out


def suffixed_trace_path(path: str, rep: dict) -> str:
    """t.json -> t.serial-g4.json, t.none.json (one trace per compared run)."""
    from pathlib import Path
    p = Path(path)
    tag = rep["schedule"] + (f"-g{rep['gamma']}" if rep["schedule"] != "none" else "")
    return str(p.with_name(f"{p.stem}.{tag}{p.suffix}"))


def compare_table(reports: list[dict]) -> None:
    """One row per run; speed (tokens/s) and energy per token also as multiples of the
    first row's (schedule none)."""
    from rich.table import Table
    ref = reports[0]
    first = ref["hw"]
    t = Table(title=f"speccc run: schedules compared on {first} ({ref['mode']}, "
              f"{ref['generated_tokens']} tokens, common random numbers)")
    for col in ("schedule", "γ", "tokens/s", "×none", "accept len", "mJ/token", "×none",
                "busiest"):
        t.add_column(col, justify="left" if col in ("schedule", "busiest") else "right",
                     no_wrap=True)
    for r in reports:
        busy = max(r["utilization"].items(), key=lambda kv: kv[1])
        t.add_row(r["schedule"], str(r["gamma"]) if r["schedule"] != "none" else "-",
                  _fmt(r["tokens_per_s"]), _ratio(r["tokens_per_s"], ref["tokens_per_s"]),
                  _fmt(r["mean_acceptance_length"]), _fmt(r["energy_per_token_mj"]),
                  _ratio(r["energy_per_token_mj"], ref["energy_per_token_mj"]),
                  f"{busy[0]} {busy[1]:.0%}")
    console().print(t)


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def report_table(rep: dict, target, draft) -> None:
    from rich.table import Table
    con = console()     # markup off: prompts and completions print as themselves
    for r in rep.get("requests") or ([rep] if "text" in rep else []):
        con.print(r["prompt"] + r["text"])
    if "text" not in rep and rep["mode"] == "functional":
        con.print("tokens: " + " ".join(map(str, rep["tokens"])))
    t = Table(title=f"speccc run: {rep['schedule']} (gamma {rep['gamma']}, {rep['hw']}, "
              f"{rep['mode']})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    pos = ", ".join(_fmt(p, 2) for p in rep["per_position_acceptance"])
    rows = [("generated tokens", rep["generated_tokens"]),
            ("tokens/s (modeled)", rep["tokens_per_s"]),
            ("decode tokens/s", rep["decode_tokens_per_s"]),
            ("time to first token (ms)", rep["ttft_ms"]),
            ("inter-token latency (ms)", rep["itl_ms"]),
            ("mean acceptance length", rep["mean_acceptance_length"]),
            ("acceptance rate", rep["acceptance_rate"]),
            ("per-position acceptance", pos or "-"),
            ("drafted: accepted/rejected/cancelled",
             "/".join(str(v) for v in rep["drafted_tokens"].values())),
            ("runs (cancelled)", ", ".join(f"{k} {v} ({rep['cancelled_runs'].get(k, 0)})"
                                           for k, v in rep["runs"].items())),
            ("energy (mJ)", rep["energy_mj"]),
            ("energy/token (mJ)", rep["energy_per_token_mj"]),
            ("of which PIM background (mJ)", rep["pim_background_mj"]),
            ("of which GPU static (mJ)", rep["gpu_static_mj"])]
    rows += [(f"utilization {r}", f"{u:.1%}") for r, u in rep["utilization"].items()]
    for k, v in rows:
        t.add_row(k, _fmt(v))
    t.caption = ("acceptance rate: accepted / verified drafted tokens (a rejection rejects "
                 "the rest of its block, so it is below --acceptance); see "
                 "docs/schedules.md, Report")
    con.print(t)
