"""The discrete-event engine: exclusive resources, FIFO dispatch, stage order,
cancellation between ops."""
from __future__ import annotations

from speccc.runtime.engine import Engine, TaskSpec


def T(name, res, dur, energy=1.0, stage=-1):
    return TaskSpec(name, tuple(res), dur, energy, "op", stage)


def spans(engine, resource):
    return [(s["name"], s["start"], s["end"]) for s in engine.slices
            if s["resource"] == resource]


def test_runs_share_a_resource_one_task_at_a_time():
    e = Engine(["npu", "pim"])
    done = []
    e.launch("a", "m", [T("x", ["npu"], 10), T("y", ["pim"], 5)], lambda r: done.append(r.id))
    e.launch("b", "m", [T("z", ["npu"], 3)], lambda r: done.append(r.id))
    e.run()
    assert spans(e, "npu") == [("x r0", 0, 10), ("z r1", 10, 13)]
    assert spans(e, "pim") == [("y r0", 10, 15)]
    assert done == [1, 0]                      # b finishes at 13, a at 15
    assert e.busy == {"npu": 13, "pim": 5}


def test_multi_resource_task_blocks_both_and_charges_energy_once():
    e = Engine(["npu", "pim.t"])
    e.launch("a", "m", [T("linear", ["npu", "pim.t"], 10, energy=7.0)])
    e.launch("b", "m", [T("gemv", ["pim.t"], 4)])
    e.run()
    assert spans(e, "pim.t") == [("linear r0", 0, 10), ("gemv r1", 10, 14)]
    assert e.energy_pj == 8.0


def test_dispatch_is_fifo_by_ready_time():
    """A long chain does not starve a task that has waited longer."""
    e = Engine(["npu", "pim"])
    e.launch("long", "m", [T(f"op{i}", ["npu"], 10) for i in range(3)])
    e.launch("late", "m", [T("pre", ["pim"], 5), T("small", ["npu"], 1)])
    e.run()
    # small is ready at 5, op1 at 10: small goes first when the NPU frees at 10
    assert [n for n, *_ in spans(e, "npu")] == ["op0 r0", "small r1", "op1 r0", "op2 r0"]


def test_cancel_acts_between_ops():
    e = Engine(["npu"])
    done = []
    victim = e.launch("spec", "m", [T(f"op{i}", ["npu"], 10) for i in range(3)],
                      lambda r: done.append(r.id))
    e.at(15.0, lambda: e.cancel(victim, "test"))
    e.run()
    assert spans(e, "npu") == [("op0 r0", 0, 10), ("op1 r0", 10, 20)]  # op1 finishes
    assert victim.cancelled and victim.finished == 20 and done == []
    assert all(s["cancelled"] for s in victim.slices)
    assert [(i["resource"], i["time"]) for i in e.instants] == [("npu", 15.0)]


def test_stage_order_follows_launch_order():
    """A pipeline stage takes runs in launch order even when another is ready first."""
    e = Engine(["npu", "s0"])
    e.launch("a", "t", [T("embed", ["npu"], 10), T("layer", ["s0"], 5, stage=0)])
    e.launch("b", "t", [T("layer", ["s0"], 1, stage=0)])
    e.run()
    assert spans(e, "s0") == [("layer r0", 10, 15), ("layer r1", 15, 16)]


def test_cancelled_predecessor_releases_the_stage():
    e = Engine(["s0"])
    a = e.launch("a", "t", [T("x", ["s0"], 5, stage=0), T("y", ["s0"], 5, stage=0)])
    e.launch("b", "t", [T("z", ["s0"], 1, stage=0)])
    e.at(2.0, lambda: e.cancel(a))
    e.run()
    assert spans(e, "s0") == [("x r0", 0, 5), ("z r1", 5, 6)]
