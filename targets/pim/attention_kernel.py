"""The attention kernel: `score` (append the new keys, q·Kᵀ) and `context` (append the
new values, p·V) phases over the KV cache (kv_layout.py), with the host's scale,
mask and softmax between them (codegen.py's phase table).
"""
from __future__ import annotations

import numpy as np

from speccc.errors import SpecccError
from speccc.hw.config import dtype_bytes
from speccc.targets.pim import kv_layout as kv
from speccc.targets.pim.kernels import Kernel, Work, _run, _stream_bursts
from speccc.targets.pim.op_layout import op_dims


class AttentionKernel(Kernel):
    """softmax(q Kᵀ * scale, masked) V on PIM GEMVs; softmax on the host. A batch of B
    requests has B keys/values regions (op_layouts); each listing runs request after
    request, request r's host input and results in its own block."""

    def __init__(self, hw, op, attrs, shapes, regions, name):
        self.hw, self.op, self.attrs, self.name = hw, op, attrs, name
        d = op_dims(op, attrs, shapes)
        if d["S"] < d["T"]:
            raise SpecccError(f"attention: {d['S']} keys for {d['T']} queries; PIM appends "
                              "the last T keys to the cache")
        self.kls = [r.layout for r in regions[0::2]]
        self.vls = [r.layout for r in regions[1::2]]
        self.B = d["B"]
        self.kl, self.vl = self.kls[0], self.vls[0]
        if d["S"] > self.kl.max_context:
            raise SpecccError(f"attention over {d['S']} keys exceeds the placed max_context "
                              f"{self.kl.max_context}")
        self.H, self.T, self.S, self.D, self.G = d["H"], d["T"], d["S"], d["D"], d["G"]
        self.first = self.S - self.T
        self._phases = None

    def _q_bursts(self) -> int:
        return self.H * self.T * self.kl.width

    def _score_block(self) -> tuple[int, int]:
        """(host input bursts, result slots) of one request in the score listing."""
        append = self.G * self.T * self.kl.width
        return self._q_bursts() + append, self.H * self.T * kv.score_outputs(self.kl)

    def _ctx_bursts(self) -> int:
        return self.H * self.T * _stream_bursts(self.vl.placements(self.S)[0])

    def _ctx_block(self) -> tuple[int, int]:
        """(host input bursts, result slots) of one request in the context listing."""
        pls = self.vl.placements(self.S)
        append = kv.value_append_bursts(self.vl, self.first, self.T)
        return self._ctx_bursts() + append, self.H * self.T * len(pls) * pls[0].outputs

    def phases(self):
        if self._phases is None:
            hw, H, T, S = self.hw, self.H, self.T, self.S
            (sin, sout), (cin, cout) = self._score_block(), self._ctx_block()
            score: list = []
            ctx: list = []
            for r, (kl, vl) in enumerate(zip(self.kls, self.vls)):
                score += (kv.key_append(kl, self.first, T, r * sin + self._q_bursts())
                          + kv.score_body(hw, kl, S, heads=H, positions=T, src=r * sin,
                                          dst=r * sout))
                ctx += (kv.value_append(hw, vl, self.first, T, r * cin + self._ctx_bursts())
                        + kv.context_body(hw, vl, S, heads=H, positions=T, src=r * cin,
                                          dst=r * cout))
            self._phases = [("score", self._program("score", score)),
                            ("context", self._program("context", ctx))]
        return self._phases

    def run(self, emu, ins, *, load=True):
        q, k, v = (np.asarray(a) for a in ins[:3])
        ph = dict(self.phases())
        H, T, S, W = self.H, self.T, self.S, self.kl.width
        K, V = k.astype(np.float32), v.astype(np.float32)
        stream = []
        for r, (kl, vl) in enumerate(zip(self.kls, self.vls)):
            emu.load_image(kv.key_image(kl, K[r], self.first))
            emu.load_image(kv.value_image(self.hw, vl, V[r], self.first))
            qs = np.zeros((H, T, W * kl.lanes), np.float32)
            qs[..., :self.D] = q[r].astype(np.float32)
            stream += [qs.reshape(-1), kv.key_append_stream(kl, K[r], self.first, T)]
        out = _run(emu, ph["score"], np.concatenate(stream))
        sout, cout = self._score_block()[1], self._ctx_block()[1]
        scores = np.stack([kv.key_scores(kl, out, S, heads=H, positions=T, dst=r * sout)
                           for r, kl in enumerate(self.kls)])
        probs = attention_probs(scores, self.attrs, ins[3] if len(ins) > 3 else None)
        stream = []
        for r, vl in enumerate(self.vls):
            stream += [kv.context_stream(vl, probs[r]),
                       kv.value_append_stream(vl, V[r], self.first, T)]
        out = _run(emu, ph["context"], np.concatenate(stream))
        ctx = np.stack([kv.context_outputs(vl, out, S, heads=H, positions=T, dst=r * cout)
                        for r, vl in enumerate(self.vls)])
        return [ctx.astype(q.dtype)]

    def work(self):
        ob = dtype_bytes(self.hw.pim.pu.out_dtype)
        H, T, S, D, G = self.H, self.T, self.S, self.D, self.G
        ext = H * T * (2 * D + ob * S + 2 * S + ob * D) + 2 * 2 * G * T * D
        return Work(2.0 * 2 * H * T * S * D * self.B, float(ext * self.B),
                    float(2 * H * T * S * D * self.B))


def attention_probs(scores: np.ndarray, attrs: dict, mask) -> np.ndarray:
    """The host half of attention: scale, causal/sliding window, mask, softmax (as the
    attention op's reference semantics), on [B, H, T, S] f32 scores."""
    s = scores.astype(np.float32) * np.float32(attrs["scale"])
    t, kv_len = s.shape[-2], s.shape[-1]
    if attrs.get("causal"):
        pos, key = (kv_len - t + np.arange(t))[:, None], np.arange(kv_len)[None, :]
        allowed = key <= pos
        if attrs.get("sliding_window"):
            allowed &= key > pos - attrs["sliding_window"]
        s = np.where(allowed, s, -np.inf)
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask.astype(np.float32)
    with np.errstate(invalid="ignore"):
        s = s - s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p = p / p.sum(axis=-1, keepdims=True)
    if attrs.get("nan_to_zero"):
        p = np.where(np.isnan(p), np.float32(0), p)
    return p.astype(np.float32)
