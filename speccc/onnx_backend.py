"""`onnx.backend.base.Backend` over speccc: import, canonical pipeline, reference run.

Used by onnx's own node conformance cases (tests/test_onnx_backend.py). The backend
specializes on the given inputs: input dims are fixed to the arrays' shapes, and when
a shape operand (Reshape's shape, Slice's starts, ...) is a graph input rather than
an initializer, the integer inputs are embedded as constants so the shape folds, as a
JIT would. Values are never changed by this, only made known at compile time.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from speccc.errors import NotConstantError
from speccc.frontend.onnx_import import ImportOptions, import_model, sanitize_name
from speccc.frontend.registry import supported_ops
from speccc.ir.interpreter import run_graph


def _feed_names(model: onnx.ModelProto) -> list[str]:
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def compile_for_inputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]):
    from speccc.pipeline import run_canonical
    shapes = {k: np.shape(v) for k, v in feeds.items()}
    try:
        module = import_model(model, ImportOptions(input_shapes=shapes))
    except NotConstantError:
        # Integer inputs, and scalars of any number type (Range bounds and OneHot
        # depth may be float), are the ones that can be shape operands.
        consts = {k: v for k, v in feeds.items()
                  if (np.asarray(v).dtype.kind in "iub" and np.size(v) <= 4096)
                  or (np.asarray(v).dtype.kind not in "OUS" and np.size(v) == 1)}
        module = import_model(model, ImportOptions(input_shapes=shapes,
                                                   constant_inputs=consts))
    run_canonical(module)
    return module


class SpecccRep(BackendRep):
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.names = _feed_names(model)

    def run(self, inputs: Any, **kwargs) -> tuple:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            feeds = dict(zip(self.names, inputs))
        feeds = {k: np.asarray(v) for k, v in feeds.items()}
        module = compile_for_inputs(self.model, feeds)
        graph = module.graphs["target"]
        args = {a.result.name for a in graph.arguments}
        by_arg = {sanitize_name(k): v for k, v in feeds.items() if sanitize_name(k) in args}
        outs = run_graph(graph, by_arg)
        return tuple(outs[o.name] for o in self.model.graph.output)


class SpecccBackend(Backend):
    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs) -> SpecccRep:
        super().prepare(model, device, **kwargs)
        return SpecccRep(model)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device.upper() == "CPU"


def declared_ops() -> list[str]:
    """ONNX op types speccc converts (domain-qualified outside the default domain)."""
    return sorted({(f"{d}." if d else "") + op for d, op in supported_ops()})


prepare = SpecccBackend.prepare
run_model = SpecccBackend.run_model
supports_device = SpecccBackend.supports_device
