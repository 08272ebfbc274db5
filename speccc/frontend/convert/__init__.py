"""Per-op ONNX converters; each module registers itself with speccc.frontend.registry."""
