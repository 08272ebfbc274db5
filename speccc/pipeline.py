"""The canonical pipeline every import goes through before execution or lowering."""
from __future__ import annotations

from speccc.ir.core import Module

# canonicalize: one form per computation; fold: constants and shape subgraphs; dce: dead
# ops; fuse: LLM ops (linear, rmsnorm, rope, attention, ...), checked by the reference.
CANONICAL_PIPELINE = "canonicalize,fold,dce,fuse,dce"


def run_canonical(module: Module, pipeline: str = CANONICAL_PIPELINE, verify_each=True):
    from speccc.passmanager import PassManager
    PassManager.parse(pipeline, verify_each=verify_each).run(module)
    return module
