"""PIM ops run through the PIM target's emulator: the overrides `Plan` takes so a graph
computes with the device's numerics (`exec --on emulator`, `speccc run`'s functional
backend). Here, below both the driver and the runtime, so neither imports the other
for it."""
from __future__ import annotations


def emulator_overrides(graph, hw, mode: str, timings: list | None = None) -> dict:
    """{op: fn(inputs, attrs) -> outputs} running every PIM op of `graph` through the PIM
    target's emulator (one shared device holding the whole model's placement); values
    only, unless `timings` is a list collecting one timing result per listing run."""
    # imported here: the target registry loads every target, which `speccc --help` and
    # a driver import should not pay for
    from speccc.costmodel import default_device
    from speccc.targets import target
    emulation = target("pim").emulator(hw, mode, timings)
    out = {}
    number = 0
    for op in graph.ops():
        i, number = number, number + len(op.results)
        if default_device(op) == "pim":
            label = f"{graph.name}.{i:04d}.{op.name}"
            out[op] = lambda ins, attrs, op=op, label=label: emulation.run(op, ins, label)
    return out
