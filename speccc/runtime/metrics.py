"""Metrics of a finished run (vLLM / llama.cpp conventions) and its Chrome/Perfetto trace.

tokens_per_s: generated tokens / time of the last one (prefill included);
decode_tokens_per_s: (tokens - 1) / (last - first token time); ttft: first token time;
itl: mean inter-token latency (last - first) / (tokens - 1); mean_acceptance_length:
1 + accepted / verifies over valid verifies that had draft candidates; per-position
acceptance: P(draft i accepted | it was verified); energy: sum over executed slices
(cancelled work included: it was spent); utilization: busy time / time until the engine
drained.
"""
from __future__ import annotations

from collections import Counter


def report(session, engine, sched, extra: dict | None = None) -> dict:
    times = session.emit_times           # emission time of each token (of request 0)
    gen = len(times)
    total = getattr(session, "total_tokens", gen * sched.batch)
    t_end = session.done_time if session.done_time is not None else (times[-1] if times
                                                                      else engine.now)
    span = (times[-1] - times[0]) if gen > 1 else 0.0
    ver = session.verifies
    accepted = sum(k for _, k in ver)
    positions = []
    for i in range(1, sched.gamma + 1):
        den = sum(1 for m, _ in ver if m >= i)
        num = sum(1 for m, k in ver if m >= i and k >= i)
        positions.append(num / den if den else None)
    status = Counter(session.drafted)
    runs = Counter(r.kind for r in engine.runs)
    cancelled = Counter(r.kind for r in engine.runs if r.cancelled)
    energy = engine.energy_pj
    horizon = max(engine.now, t_end)
    out = {
        "schedule": sched.kind, "gamma": sched.gamma, "hw": sched.hw, "batch": sched.batch,
        "generated_tokens": total,
        "tokens": session.committed[session.n_prompt:],
        "time_ms": t_end / 1e6,
        "tokens_per_s": total / (t_end * 1e-9) if t_end > 0 else None,
        "decode_tokens_per_s": (gen - 1) / (span * 1e-9) * total / gen if span > 0 else None,
        "ttft_ms": times[0] / 1e6 if times else None,
        "itl_ms": span / (gen - 1) / 1e6 if gen > 1 else None,
        "verifies": len(ver),
        "mean_acceptance_length": 1 + accepted / len(ver) if ver else None,
        "acceptance_rate": accepted / sum(m for m, _ in ver) if ver else None,
        "per_position_acceptance": positions,
        "drafted_tokens": {s: status.get(s, 0) for s in ("accepted", "rejected",
                                                          "cancelled")},
        "runs": dict(sorted(runs.items())),
        "cancelled_runs": dict(sorted(cancelled.items())),
        "energy_mj": energy / 1e9,
        "energy_per_token_mj": energy / 1e9 / total if total else None,
        "utilization": engine.utilization(horizon),
        "channel_groups": {k: len(v) for k, v in sched.groups.items()},
    }
    out.update(extra or {})
    return out


def chrome_trace(engine, meta: dict | None = None) -> dict:
    """Chrome trace-event JSON (Perfetto opens it): one thread per resource, complete
    events (ph X, microseconds) named `op rRUN`, instant events for cancellations."""
    tid = {r: i + 1 for i, r in enumerate(engine.resources)}
    events = [{"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "speccc run"}}]
    for r, i in tid.items():
        events.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": i,
                       "args": {"name": r}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": i,
                       "args": {"sort_index": i}})
    for s in engine.slices:
        events.append({
            "ph": "X", "pid": 1, "tid": tid[s["resource"]], "name": s["name"],
            "cat": ("cancelled," if s["cancelled"] else "") + s["run_kind"],
            "ts": s["start"] / 1e3, "dur": (s["end"] - s["start"]) / 1e3,
            "args": {"run": s["run"], "op": s["op"], "model": s["model"],
                     "run_kind": s["run_kind"], "kind": s["kind"],
                     "energy_pj": s["energy_pj"], "cancelled": s["cancelled"],
                     "start_ns": s["start"], "end_ns": s["end"], **s["args"]}})
    for c in engine.instants:
        events.append({"ph": "i", "s": "t", "pid": 1, "tid": tid[c["resource"]],
                       "name": c["name"], "cat": "cancel", "ts": c["time"] / 1e3,
                       "args": {"run": c["run"], "reason": c["reason"]}})
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": meta or {}}


def dumps_trace(engine, meta=None) -> str:
    from speccc.textio import dumps_json
    return dumps_json(chrome_trace(engine, meta), separators=(",", ":"))
