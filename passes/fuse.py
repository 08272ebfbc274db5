"""fuse: form LLM ops from core-op subgraphs, by declarative pattern tables.

Rewrites (stage 1) matmul/gemm with a 2-D weight (optionally transposed, plus a bias add,
through a flatten-to-2-D reshape pair) into `linear`; (stage 2) RMSNorm spelled with
pow/reduce_mean/sqrt/reciprocal into `rmsnorm`, `layer_norm` over the last axis into
`layernorm`, spelled-out GELU into `gelu`, rotate-half rotary into `rope`, and
softmax(q·kᵀ·scale masked)·v with repeated (GQA) kv heads into `attention` in the
spellings of speccc's zoo and of torch.onnx dynamo exports (see _fuse_rules_attention);
(stage 3) silu-gated MLPs over three linears, or over one gate|up linear split in halves,
into `gated_mlp`.

The tables live in _fuse_rules_dense.py (linear, norms, activations, MLPs) and
_fuse_rules_attention.py (rope, attention). After: every formed op computes what its
subgraph did (its reference semantics are independent); a mask is dropped for
`causal = true` (and `sliding_window`) only after evaluating it for several (T, P)
bindings and finding exactly that pattern, otherwise it stays an operand; a stored mask
(static-shape exports fold the causal mask to an initializer) is read and must be exactly
causal (or a sliding window) for attention to fuse.

Layers whose attention or MLP did not fuse are recorded, one line each with the reason,
in the graph attribute `fuse_warnings` (_fuse_report.py); compile prints them and puts
them in report.json.
"""
from __future__ import annotations

from speccc.passes._fuse_rules_attention import ATTENTION_RULES, ROPE_RULES
from speccc.passes._fuse_rules_dense import ACT_RULES, LINEAR_RULES, MLP_RULES, NORM_RULES
from speccc.passes._patterns import apply_rules
from speccc.passmanager import Pass, register_pass

STAGES = [LINEAR_RULES, NORM_RULES + ACT_RULES + ROPE_RULES + ATTENTION_RULES, MLP_RULES]
PATTERN_NAMES = sorted({r.name.split(".")[0] for s in STAGES for r in s})


@register_pass
class Fuse(Pass):
    name = "fuse"
    summary = "form LLM ops (linear, rmsnorm, layernorm, gelu, rope, attention, gated_mlp)"
    patterns: list = None  # subset of PATTERN_NAMES (':'-separated); default all

    def run_on_graph(self, graph) -> None:
        wanted = set(self.patterns or PATTERN_NAMES)
        unknown = wanted - set(PATTERN_NAMES)
        if unknown:
            from speccc.errors import SpecccError
            raise SpecccError(f"fuse: unknown pattern(s) {sorted(unknown)}; "
                              f"known: {', '.join(PATTERN_NAMES)}")
        for stage in STAGES:
            apply_rules(graph, [r for r in stage if r.name.split(".")[0] in wanted])
        if wanted == set(PATTERN_NAMES):     # a partial fuse leaves the rest by request
            from speccc.passes._fuse_report import fusion_warnings
            found = fusion_warnings(graph)
            if found:
                graph.attrs["fuse_warnings"] = found
            else:
                graph.attrs.pop("fuse_warnings", None)
