"""Discrete-event runtime for speculative decoding schedules (see docs/schedules.md).

    from speccc.runtime import RunConfig, load_pair, simulate
    module, meta = load_pair("target.onnx", "draft.onnx")
    PassManager.parse("speculate{schedule=overlap,gamma=4}").run(module)
    report, engine = simulate(module, RunConfig(max_new_tokens=32), meta)
"""
from speccc.runtime.runner import RunConfig, load_pair, simulate

__all__ = ["RunConfig", "load_pair", "simulate"]
