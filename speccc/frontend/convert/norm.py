"""Converters for ONNX normalization ops."""
from __future__ import annotations

import numpy as np

from speccc.frontend.registry import converter, dtype_of


def _f32(ctx, name, default):
    # ONNX float attributes are float32; keep that exact value.
    return float(np.float32(ctx.attr(name, default)))


def _stash_attrs(ctx):
    return {"epsilon": _f32(ctx, "epsilon", 1e-5),
            "stash_type": dtype_of(ctx.attr("stash_type", 1), ctx.loc)}


def _inputs(ctx):
    return [v for v in ctx.inputs if v is not None]


@converter("LayerNormalization", since=17)
def layer_norm(ctx):
    return ctx.emit("layer_norm", _inputs(ctx), {"axis": int(ctx.attr("axis", -1)),
                                                 **_stash_attrs(ctx)})


@converter("RMSNormalization", since=23)
def rms_norm(ctx):
    return ctx.emit("rms_norm", _inputs(ctx), {"axis": int(ctx.attr("axis", -1)),
                                               **_stash_attrs(ctx)})


@converter("BatchNormalization", since=9)
def batch_norm(ctx):
    # Opsets 9-13 may list training outputs (saved mean/var) but define none of
    # their values for inference; from 14 `training_mode` selects the behaviour.
    training = bool(ctx.attr("training_mode", 0)) if ctx.opset >= 14 else False
    n_out = len([o for o in ctx.node.output if o])
    if not training and n_out > 1:
        ctx.fail("outputs beyond Y are only defined in training mode")
    outs = ctx.emit("batch_norm", ctx.inputs[:5], {
        "epsilon": _f32(ctx, "epsilon", 1e-5), "momentum": _f32(ctx, "momentum", 0.9),
        "training": training})
    return outs


@converter("InstanceNormalization", since=6)
def instance_norm(ctx):
    return ctx.emit("instance_norm", ctx.inputs[:3], {"epsilon": _f32(ctx, "epsilon", 1e-5)})


@converter("GroupNormalization", since=21)
def group_norm(ctx):
    # Opset 18's per-group scale/bias (a different layout) is not converted.
    return ctx.emit("group_norm", ctx.inputs[:3], {"num_groups": int(ctx.attr("num_groups")),
                                                   **_stash_attrs(ctx)})


@converter("LpNormalization", since=1)
def lp_norm(ctx):
    return ctx.emit("lp_norm", [ctx.input(0)], {"axis": int(ctx.attr("axis", -1)),
                                                "p": int(ctx.attr("p", 2))})


@converter("MeanVarianceNormalization", since=9)
def mean_variance_norm(ctx):
    return ctx.emit("mean_variance_norm", [ctx.input(0)],
                    {"axes": [int(a) for a in ctx.attr("axes", [0, 2, 3])]})
