"""speccc.zoo: ONNX decoder models built in code (onnx.helper, opset 18), for tests,
examples and shapes-only studies of real model sizes.

    from speccc import zoo
    m = zoo.build("llama-tiny", mode="decode")          # ModelProto with seeded weights
    big = zoo.build("llama2-70b")                       # shapes-only, no weight bytes
    draft, target = zoo.build_pair("llama-tiny", extra_layers=1, residual_scale=0.1)
    zoo.check(big); zoo.param_count(big); zoo.save(m, "m.onnx")

See models.py for the input/output interface and builder.py for the shapes-only encoding.
"""
from .builder import IR_VERSION, OPSET, SHAPES_ONLY_LOCATION, GraphBuilder
from .models import build_model
from .presets import (PRESETS, build, build_pair, check, example_inputs, get_spec,
                      is_shapes_only, list_models, pair_specs, param_count, save)
from .spec import ModelSpec

__all__ = [
    "ModelSpec", "PRESETS", "list_models", "get_spec", "build", "build_model", "build_pair",
    "pair_specs", "example_inputs", "param_count", "is_shapes_only", "check", "save",
    "GraphBuilder",
    "OPSET", "IR_VERSION", "SHAPES_ONLY_LOCATION",
]
