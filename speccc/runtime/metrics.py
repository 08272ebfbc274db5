"""Metrics of a finished run (vLLM / llama.cpp conventions) and its Chrome/Perfetto trace.

A batch report's figures are aggregates over its requests (tokens: the sum; acceptance:
over every request's verifies; tokens, ttft and itl: request 0's) and `requests` holds each
request's own (tokens, ttft, time, verifies, acceptance, drafted-token outcomes, cancelled
runs). tokens_per_s: generated tokens / time of the last one (prefill included);
decode_tokens_per_s: (tokens - 1) / (last - first token time); ttft: first token time;
itl: mean inter-token latency (last - first) / (tokens - 1); mean_acceptance_length:
1 + accepted / verifies over valid verifies that had draft candidates; per-position
acceptance: P(draft i accepted | it was verified); energy: sum over executed slices
(cancelled work included: it was spent; ops' energy is dynamic only) plus the system's
standby power over the run's horizon (until the engine drained; `standby_pj`): the PIM
DRAM's background power on all its channels (`pim_background_mj` on its own) and every
GPU's static power (`gpu_static_mj` on its own: a powered board draws it while it waits
too); utilization: busy time / time until the engine drained.
"""
from __future__ import annotations

from collections import Counter

from speccc.costmodel import gpu_static_pj, pim_background_pj


def report(session, engine, sched, extra: dict | None = None) -> dict:
    lane = session.lane0
    times = lane.emit_times              # emission time of each token (of request 0)
    gen = len(times)
    total = sum(ln.generated for ln in session.lanes)
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
    horizon = max(engine.now, t_end)
    background = pim_background_pj(session.hw, horizon)
    static = gpu_static_pj(session.hw, horizon)
    energy = engine.energy_pj + background + static    # ops + standby_pj(hw, horizon)
    out = {
        "schedule": sched.kind, "gamma": sched.gamma, "hw": sched.hw, "batch": sched.batch,
        "generated_tokens": total,
        "tokens": lane.committed[lane.n_prompt:],
        "time_ms": t_end / 1e6,
        "tokens_per_s": total / (t_end * 1e-9) if t_end > 0 else None,
        "decode_tokens_per_s": (gen - 1) / (span * 1e-9) * total / gen if span > 0 else None,
        "ttft_ms": times[0] / 1e6 if times else None,
        "token_times_ms": [t / 1e6 for t in times],
        "itl_ms": span / (gen - 1) / 1e6 if gen > 1 else None,
        "verifies": len(ver),
        "mean_acceptance_length": 1 + accepted / len(ver) if ver else None,
        "acceptance_rate": accepted / sum(m for m, _ in ver) if ver else None,
        "per_position_acceptance": positions,
        "verify_outcomes": [list(v) for v in ver],
        "drafted_tokens": {s: status.get(s, 0) for s in ("accepted", "rejected",
                                                          "cancelled")},
        "runs": dict(sorted(runs.items())),
        "cancelled_runs": dict(sorted(cancelled.items())),
        "energy_mj": energy / 1e9,
        "energy_per_token_mj": energy / 1e9 / total if total else None,
        "pim_background_mj": background / 1e9,
        "gpu_static_mj": static / 1e9,
        "utilization": engine.utilization(horizon),
        "channel_groups": {k: len(v) for k, v in sched.groups.items()},
    }
    if len(session.lanes) > 1:
        out["requests"] = [_request(ln, session, engine) for ln in session.lanes]
    out["warnings"] = _warnings(session, sched, status)
    out.update(extra or {})
    return out


def _request(lane, session, engine) -> dict:
    """One request's own figures (a batch report's `requests`); a run serving several
    requests counts in each of their `cancelled_runs`."""
    ver, t = lane.verifies, lane.emit_times
    accepted = sum(k for _, k in ver)
    status = Counter(s for s, i in zip(session.drafted, session.drafted_by)
                     if i == lane.index)
    cancelled = Counter(r.kind for r in engine.runs
                        if r.cancelled and lane.index in r.meta.get("lanes", {}))
    return {"tokens": lane.committed[lane.n_prompt:], "generated_tokens": lane.generated,
            "ttft_ms": t[0] / 1e6 if t else None,
            "time_ms": lane.done_time / 1e6 if lane.done_time is not None else None,
            "verifies": len(ver),
            "mean_acceptance_length": 1 + accepted / len(ver) if ver else None,
            "acceptance_rate": accepted / sum(m for m, _ in ver) if ver else None,
            "drafted_tokens": {s: status.get(s, 0) for s in ("accepted", "rejected",
                                                              "cancelled")},
            "cancelled_runs": dict(sorted(cancelled.items()))}


def _warnings(session, sched, status) -> list[str]:
    """Runs that did not exercise what they claim, each in one line."""
    out = []
    if sched.speculative and not session.drafted:
        cutoffs = [s.attrs for s in sched.steps if s.name == "spec.burst"]
        why = (f"every draft stopped at the confidence cutoff (p_accept="
               f"{cutoffs[0]['p_accept']:g}; the highest draft confidence was "
               f"{session.max_confidence:.3g}): lower --p-accept" if cutoffs else
               "no draft was launched")
        out.append(f"schedule {sched.kind} drafted nothing: {why}")
    elif sched.speculative and not status.get("accepted") and not status.get("rejected"):
        out.append(f"schedule {sched.kind} checked no draft token "
                   f"({status.get('cancelled', 0)} drafted tokens were cancelled)")
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
