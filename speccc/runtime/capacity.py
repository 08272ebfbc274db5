"""Does a run fit its hardware? The models' weights and KV caches against the DRAM of the
PIM channels each model owns (SpecPIM splits channels between draft and target).

Counted as compile's `place` stores them: floating-point weights and KV as the preset's
16-bit words, integer (quantized) weights as their bytes; the KV cache for `context`
positions of each of `batch` requests. `place` also rounds every matrix up to whole bank
rows, so a model within a few percent of the capacity may pass here and fail `compile`.
"""
from __future__ import annotations

import math

from speccc import modelinfo
from speccc.costmodel import PIM_WORD, pim_bytes
from speccc.errors import CapacityError


def model_bytes(graph, context: int, batch: int) -> tuple[int, int]:
    """(weight bytes, KV bytes) of `graph` as PIM stores them."""
    weights = int(sum(pim_bytes(op.result.type, {}) for op in graph.ops()
                      if op.name == "weight"))
    outs = dict(zip(graph.output_names, graph.outputs))
    kv = 0
    for pair in modelinfo.kv_pairs(graph):
        dtype = outs[pair.present].type.dtype
        per_element = PIM_WORD if dtype.is_float else dtype.itemsize_bits // 8
        kv += pair.token_bytes * 8 // dtype.itemsize_bits * per_element
    return weights, kv * context * batch


def check_fits(module, program, hw, context: int, batch: int) -> None:
    """Raise a CapacityError with the numbers when some channel set cannot hold its models
    (a GPU system: its GPUs and PIM devices, `gpu_system_fits`)."""
    if hw.system.xpu == "gpu":
        models = [program.target] + ([program.draft] if program.speculative else [])
        mapping = _gpu_mapping(module.graphs[program.target])
        why = gpu_system_fits(hw, mapping, {n: model_bytes(module.graphs[n], context, batch)
                                            for n in models})
        if why:
            raise CapacityError(why)
        return
    per_channel = hw.derived()["capacity_bytes"] / hw.pim.channels
    models = [program.target] + ([program.draft] if program.speculative else [])
    by_channels: dict[tuple, list[str]] = {}
    for name in models:
        chans = tuple(sorted({c for g in program.on(name) for c in program.groups.get(g, [])}))
        by_channels.setdefault(chans, []).append(name)
    for chans, names in by_channels.items():
        parts = [model_bytes(module.graphs[n], context, batch) for n in names]
        need = sum(w + k for w, k in parts)
        cap = per_channel * len(chans)
        if need > cap:
            what = " + ".join(f"@{n} {w / 2**30:.2f} GiB weights + {k / 2**30:.2f} GiB KV"
                              for n, (w, k) in zip(names, parts))
            raise CapacityError(
                f"does not fit {hw.label}: {what} ({context} positions x {batch} "
                f"request(s), 16-bit words) = {need / 2**30:.2f} GiB, but its "
                f"{len(chans)} of {hw.pim.channels} PIM channels hold {cap / 2**30:.2f} GiB; "
                "use a larger --hw preset, a shorter context or a smaller batch")


def gpu_system_fits(hw, mapping: str, need: dict) -> str | None:
    """Why `need` ({model: (weight bytes, KV bytes)}) does not fit a GPU system, or None.

    The GPUs hold the weights (split evenly over `xpus` in tensor parallel) and, unless
    the mapping puts attention on PIM (`attacc`, `all-pim`), the KV cache; PIM devices
    hold what the mapping puts there. 16-bit words, as `model_bytes` counts them."""
    on_pim_kv = hw.pim is not None and mapping in ("attacc", "all-pim")
    on_pim_w = hw.pim is not None and mapping == "all-pim"
    gpu = sum((0 if on_pim_w else w) + (0 if on_pim_kv else k) for w, k in need.values())
    pim = sum((w if on_pim_w else 0) + (k if on_pim_kv else 0) for w, k in need.values())
    what = " + ".join(f"@{n} {w / 2**30:.2f} GiB weights + {k / 2**30:.2f} GiB KV"
                      for n, (w, k) in need.items())
    n, cap = hw.system.xpus, hw.gpu.capacity_bytes
    if gpu > n * cap:
        tp = math.ceil(gpu / cap)
        hint = f"; use --tp {tp} or more" if tp <= 64 else ""
        return (f"does not fit {hw.name}: {what} = {gpu / 2**30:.2f} GiB on the GPUs "
                f"(16-bit words), but {n} GPU(s) of {cap / 2**30:.2f} GiB hold "
                f"{n * cap / 2**30:.2f} GiB{hint}")
    if pim and pim > hw.derived()["capacity_bytes"]:
        return (f"does not fit {hw.name}: {pim / 2**30:.2f} GiB on its PIM devices, which "
                f"hold {hw.derived()['capacity_bytes'] / 2**30:.2f} GiB")
    return None


def _gpu_mapping(graph) -> str:
    """What a GPU system's partitioned graph keeps on PIM: attention (`attacc`), or
    nothing (`all-gpu`)."""
    on_pim = {op.name for op in graph.ops() if op.attrs.get("device") == "pim"}
    return "attacc" if on_pim else "all-gpu"
