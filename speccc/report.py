"""The compile report, read from a lowered module (after lower-pim and lower-npu).

    report = compile_report(module)   # hw, graphs, summary, totals, serial_ns, listings, ...

Per op (`graphs[NAME]["ops"]`): `op` (the lowered op's name), `id` (its %N), `loc`,
`device`, the op table's `flops` / `bytes_read` / `bytes_written`, and its timing:
kernel ops (`pim.kernel`, `npu.kernel`) give the totals the target reads back
(`target(device).time`: `cycles`, `ns`, `energy_pj`, `bytes_in`, `bytes_out`), their
`timing`, `bound`, `roofline_ns`, `efficiency`, plus the target's own fields
(`describe`: PIM phases and placement); glue ops run on the host for free
(`timing = "none"`). `summary` per (op, device), `totals` per device, `serial_ns` the sum
of every op (no overlap; the runtime models overlap and contention).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from speccc.costmodel import default_device, is_glue
from speccc.errors import SpecccError
from speccc.ir.ops.kernel import KERNEL_OPS, lowered_name
from speccc.ir.opdefs import op_cost
from speccc.targets import target

SUMMED = ("flops", "bytes_read", "bytes_written", "ns", "energy_pj", "bytes_in", "bytes_out")
TOTALLED = ("ns", "energy_pj", "bytes_in", "bytes_out")
HOST_ROW = {"timing": "none", "cycles": 0, "ns": 0.0, "bytes_in": 0, "bytes_out": 0,
            "energy_pj": 0.0, "bound": "overhead", "roofline_ns": None, "efficiency": None}


def kernel_row(op, device: str) -> dict:
    t = target(device)
    timing = t.time(op)
    a = op.attrs
    return {"timing": a["timing"], "cycles": timing.cycles, "ns": timing.ns,
            "bytes_in": timing.bytes_in, "bytes_out": timing.bytes_out,
            "energy_pj": timing.energy_pj, "bound": a["bound"], "roofline_ns": a["roofline_ns"],
            "efficiency": a.get("efficiency"), **t.describe(op)}


def op_row(op, number: int) -> dict:
    c = op_cost(op)
    device = default_device(op)
    row = {"op": lowered_name(op), "id": number,
           "loc": op.loc, "device": device, "flops": int(c.flops),
           "bytes_read": int(c.bytes_read), "bytes_written": int(c.bytes_written)}
    if op.name in KERNEL_OPS:
        return {**row, **kernel_row(op, device)}
    if not is_glue(op):
        raise SpecccError(f"{op.name} on {device} is not lowered (run lower-{device})",
                          location=op.where())
    return {**row, **HOST_ROW}


def summarize(rows) -> tuple[list, dict]:
    """(summary per (op, device) by time, totals per device) of op rows."""
    summary: dict[tuple, Counter] = defaultdict(Counter)
    totals: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        s = summary[(row["op"], row["device"])]
        s["count"] += 1
        for k in SUMMED:
            s[k] += row[k]
        if row.get("roofline_ns"):
            s["roofline_ns"] += row["roofline_ns"]
        t = totals[row["device"]]
        t["ops"] += 1
        for k in TOTALLED:
            t[k] += row[k]
    summ = []
    for (name, device), v in sorted(summary.items(), key=lambda kv: (-kv[1]["ns"],
                                                                      -kv[1]["flops"], kv[0])):
        d = {"op": name, "device": device, **v}
        d["efficiency"] = (v["roofline_ns"] / v["ns"]) if v.get("roofline_ns") and v["ns"] else None
        summ.append(d)
    return summ, {dev: dict(v) for dev, v in sorted(totals.items())}


def compile_report(module) -> dict:
    graphs: dict = {}
    every = []
    for g in module:
        rows = []
        number = 0  # the printer's %N of the op's first result (listing names follow it)
        for op in g.ops():
            rows.append(op_row(op, number))
            number += len(op.results)
        every += rows
        summ, tot = summarize(rows)
        graphs[g.name] = {"ops": rows, "kv_cache": g.attrs.get("kv_cache", []),
                          "fuse_warnings": list(g.attrs.get("fuse_warnings", [])),
                          "summary": summ, "totals": tot,
                          "serial_ns": sum(v["ns"] for v in tot.values())}
    summ, totals = summarize(every)
    lowered = [dict(g.attrs.get("lowered_pim") or []) for g in module]
    return {"hw": next((x["hw"] for x in lowered if "hw" in x), None), "graphs": graphs,
            "summary": summ, "totals": totals,
            "serial_ns": sum(v["ns"] for v in totals.values()),
            "listings": sum(len(op.attrs["listings"]) for g in module for op in g.ops()
                            if op.name == "pim.kernel"),
            "timed_programs": sum(x.get("timed_programs", 0) for x in lowered)}
