"""KV-cache layout for attention GEMVs on PIM, with room to append tokens up to a maximum
context, and the listings that append to it and compute q·Kᵀ scores and p·V contexts.

NeuPIMs-style: keys one token per bank segment, values transposed. Both are per kv
head; a query head h reads kv head h // (heads / kv_heads) (GQA: stored once, read by
every query head of its group).

Keys (kv_keys.py): one token per bank segment, scores by all-bank MACs a segment at a
time. Values (kv_values.py): Vᵀ as a GEMV matrix in "passes" order, a growing context
adding tiles. Each module's docstring gives its layout in full.

One guard row per value head (as layout.py) is reserved; keys need none.
"""
from speccc.targets.pim.kv_keys import (KeyLayout, key_append, key_append_stream, key_image,
                                        key_scores, plan_keys, score_body, score_outputs,
                                        tokens_per_visit)
from speccc.targets.pim.kv_values import (ValueLayout, context_body, context_outputs,
                                          context_stream, plan_values, value_append,
                                          value_append_bursts, value_append_stream,
                                          value_image)

# What callers reach as `kv_layout.NAME` (`from speccc.targets.pim import kv_layout as kv`).
__all__ = ["KeyLayout", "ValueLayout", "context_body", "context_outputs", "context_stream",
           "key_append", "key_append_stream", "key_image", "key_scores", "plan_keys",
           "plan_values", "score_body", "score_outputs", "tokens_per_visit", "value_append",
           "value_append_bursts", "value_append_stream", "value_image"]
