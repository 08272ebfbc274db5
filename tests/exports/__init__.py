"""Real Hugging Face model exports (torch.onnx dynamo, opset 18) used as test inputs.

See hf_export.py and docs/exports.md. Needs the [export] extra (torch, transformers, onnxscript).
"""
