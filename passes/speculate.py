"""speculate: build the speculative decoding schedule of a module with @draft and @target.

    speculate{schedule=serial,gamma=4}
    speculate{schedule=overlap,gamma=4,draft_channels=2,hw=aim-gddr6}
    speculate{schedule=pipeinfer,gamma=3,p_accept=0.1,p_recovery=0.2,max_inflight=4}

Schedules: `none` (target only, autoregressive), `serial` (draft gamma tokens, verify
gamma+1 positions; with draft_channels=N the draft and the target own disjoint PIM
channel sets, which is SpecPIM), `overlap` (disjoint channel groups, the next draft runs
while the verify is in flight and is discarded on rejection), `pipeinfer` (continuous
asynchronous speculation with a confidence cutoff, early cancellation, one KV partition
per in-flight run; `stages` splits the target's channels into pipeline stages).

Adds: a `@schedule` graph of `spec.*` ops whose attributes the runtime executes
(speccc/runtime/schedule.py, docs/schedules.md). Checks: both graphs exist and have KV
caches, the vocabularies agree, the channel split fits the hardware preset.
"""
from __future__ import annotations

from speccc.errors import SpecccError
from speccc.passmanager import Pass, register_pass
from speccc.runtime import modelinfo
from speccc.runtime.schedule import KINDS, Schedule

PLACEMENTS = ("auto", "default")


@register_pass
class Speculate(Pass):
    name = "speculate"
    summary = "build the speculative decoding schedule (@schedule) for @draft/@target"
    schedule: str = "serial"
    gamma: int = 4
    draft_channels: int = 0     # 0: serial shares all channels; overlap/pipeinfer: auto
    stages: int = 1             # pipeinfer: target pipeline stages (channel groups)
    p_accept: float = 0.5
    p_recovery: float = 0.0
    p_decay: float = 0.0
    max_inflight: int = 4
    hw: str = "hbm-pim"
    placement: str = "auto"
    batch: int = 1
    draft: str = "draft"
    target: str = "target"

    def run(self, module) -> None:
        self.build(module).to_graph(module)

    def build(self, module) -> Schedule:
        from speccc.hw import load_hw
        self._check_options()
        graphs = module.graphs
        if self.target not in graphs:
            raise SpecccError(f"speculate: module has no @{self.target} graph")
        tgt = graphs[self.target]
        modelinfo.kv_pairs(tgt)
        spec = self.schedule != "none"
        if spec:
            if self.draft not in graphs:
                raise SpecccError(f"speculate: schedule {self.schedule} needs a @{self.draft} "
                                  "graph (the draft model)")
            dft = graphs[self.draft]
            modelinfo.kv_pairs(dft)
            vd, vt = modelinfo.vocab(dft), modelinfo.vocab(tgt)
            if vd != vt:
                raise SpecccError(f"draft and target vocabularies differ (draft {vd} tokens, "
                                  f"target {vt}): speculative decoding needs one tokenizer")
        channels = load_hw(self.hw).pim.channels
        groups, draft_on, target_on = self._groups(channels, module if spec else None)
        return Schedule(kind=self.schedule, gamma=self.gamma, draft=self.draft,
                        target=self.target, hw=self.hw, placement=self.placement,
                        batch=self.batch, groups=groups, draft_on=draft_on,
                        target_on=target_on, p_accept=self.p_accept,
                        p_recovery=self.p_recovery, p_decay=self.p_decay,
                        max_inflight=self.max_inflight)

    def _check_options(self) -> None:
        def bad(msg):
            raise SpecccError(f"speculate: {msg}")
        if self.schedule not in KINDS:
            bad(f"schedule must be one of {', '.join(KINDS)}, got {self.schedule!r}")
        if self.gamma < 1:
            bad(f"gamma must be >= 1 (tokens drafted per verify), got {self.gamma}")
        if self.placement not in PLACEMENTS:
            bad(f"placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if self.batch < 1:
            bad(f"batch must be >= 1, got {self.batch}")
        if self.draft_channels < 0:
            bad(f"draft_channels must be >= 0, got {self.draft_channels}")
        if self.stages < 1 or (self.stages > 1 and self.schedule != "pipeinfer"):
            bad(f"stages={self.stages}: pipeline stages are a pipeinfer option (>= 1)")
        if self.max_inflight < 1:
            bad(f"max_inflight must be >= 1, got {self.max_inflight}")
        for k in ("p_accept", "p_recovery", "p_decay"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                bad(f"{k} must be in [0, 1], got {getattr(self, k)}")

    def _groups(self, channels: int, module):
        ids = list(range(channels))
        split = self.schedule in ("overlap", "pipeinfer") or self.draft_channels > 0
        if not split:
            return {"pim": ids}, "pim", ["pim"]
        n = self.draft_channels or self._auto_draft_channels(channels, module)
        need = n + self.stages
        if need > channels:
            raise SpecccError(
                f"schedule {self.schedule} needs {need} PIM channels (draft {n} + target "
                f"{self.stages} stage(s), at least one channel each) but {self.hw} has "
                f"{channels}; lower draft_channels/stages or pick another --hw")
        groups = {"pim.draft": ids[:n]}
        rest = ids[n:]
        names = []
        for s in range(self.stages):
            name = "pim.target" if self.stages == 1 else f"pim.target{s}"
            lo, hi = s * len(rest) // self.stages, (s + 1) * len(rest) // self.stages
            groups[name] = rest[lo:hi]
            names.append(name)
        return groups, "pim.draft", names

    def _auto_draft_channels(self, channels: int, module) -> int:
        """Channels in proportion to weight bytes (decode streams every weight once)."""
        wd = modelinfo.weight_bytes(module.graphs[self.draft])
        wt = modelinfo.weight_bytes(module.graphs[self.target])
        share = round(channels * wd / max(wd + wt, 1))
        return max(1, min(share, channels - self.stages))
