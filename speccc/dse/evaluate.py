"""Evaluate points: closed-form metrics from cached forward costs, or the real runtime.

    study = Study(target="llama2-7b", draft="llama-68m", space=..., alphas=(0.8,), ...)
    rows = run_task(study, ("eval", [0, 1, 2]))      # closed form, one row per point
    rows = run_task(study, ("sim", [5]))             # `simulate` (the discrete-event runtime)

A worker keeps one `Evaluator` per study: the pair loaded once, one module per
(hardware, mapping) with the partition pass's devices (per (hardware, mapping, role,
batch, γ's verify shape, the role's channels) for the solved mappings specpim and
mincut, each priced on those channels with the study's cost model: mapping.py), and a
table of forward costs per (hardware, mapping and its solve shape, role, channels, batch,
T, P) priced by `ModelCosts` (the runtime's own prices) plus the host-link transfers the
runtime adds. A point's metrics integrate
its schedule's closed form (closedform.py) over the context growth (Simpson's rule at the
first, middle and last context of the generation); every point sharing hardware,
mapping, channels and batch reuses the same few table entries, which is what makes a
sweep fast. Randomness: none here; the runtime's acceptance draws are keyed by the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from speccc.costmodel import standby_pj
from speccc.dse.closedform import FORMS, ZERO, Fwd, accept_stats
from speccc.dse.hwfile import hw_path, load_text
from speccc.dse.mapping import solve_shape
from speccc.dse.space import Space
from speccc.errors import SpecccError

METRICS = ["feasible", "tokens_per_s", "itl_ms", "energy_per_token_mj", "edp",
           "accept_len", "note"]
OBJECTIVES = {"latency": "itl_ms", "energy": "energy_per_token_mj", "edp": "edp"}


@dataclass(frozen=True)
class Study:
    """Everything a worker needs, picklable: models, space, workload, hardware texts."""
    target: str
    draft: str
    space: Space
    alphas: tuple                 # per-position acceptance (the last repeats)
    trace: tuple | None = None    # recorded (candidates, accepted), for the runtime
    prompt_len: int = 8
    max_new_tokens: int = 128
    seed: int = 0
    cost_model: str = "roofline"
    hw_texts: tuple = ()          # ((hw key, TOML text), ...)

    def hw_key(self, point: dict) -> str:
        knobs = ",".join(f"{k}={point[k]}" for k in self.space.knobs)
        return point["hw"] + (f"+{knobs}" if knobs else "")


_EVALUATORS: dict = {}


def evaluator(study: Study) -> "Evaluator":
    key = (study.target, study.draft, study.cost_model, study.hw_texts)
    ev = _EVALUATORS.get(key)
    if ev is None:
        _EVALUATORS.clear()
        ev = _EVALUATORS[key] = Evaluator(study)
    return ev


def run_task(study: Study, task) -> list[dict]:
    """A task is ("eval" | "sim", [point ids]); returns one row per point."""
    kind, ids = task
    ev = evaluator(study)
    fn = ev.evaluate if kind == "eval" else ev.simulate
    rows = [{"id": pid, **study.space.point(pid), **fn(study, pid)} for pid in ids]
    ev.persist()
    return rows


# Kept importable for callers that need a file path (speccc baseline); the resolver
# itself lives in speccc.zoo.resolve, shared by every command.
from speccc.zoo.resolve import resolve_path as resolve_model  # noqa: E402


class Evaluator:
    def __init__(self, study: Study):
        from speccc.dse import diskcache
        self.models = (study.target, study.draft)
        self.hws = {k: load_text(t) for k, t in study.hw_texts}
        self.texts = dict(study.hw_texts)
        self.cost_model = study.cost_model
        self.variants: dict = {}
        self.costs: dict = {}
        # prices, capacity verdicts and model facts persist across runs (diskcache.py);
        # the models themselves are loaded only when something is missing
        self.cache_path = diskcache.path_for(study)
        state = diskcache.load(self.cache_path)
        self.table: dict = state.get("table", {})
        self.fits: dict = state.get("fits", {})
        self.facts: dict | None = state.get("facts")
        self._stored = (len(self.table), len(self.fits))
        self._pair = None

    def _loaded(self):
        if self._pair is None:
            from speccc import modelinfo
            from speccc.runtime.runner import load_pair
            module, meta = self._pair = load_pair(*self.models, shapes_only=True)
            tgt = module.graphs["target"]
            out = dict(zip(tgt.output_names, tgt.outputs))[modelinfo.logits_output(tgt)]
            ctx = [modelinfo.max_context(module.graphs[r], meta.get(r))
                   for r in ("target", "draft")]
            self.facts = {
                "vocab": modelinfo.vocab(tgt),
                "logit_bytes": out.type.dtype.itemsize_bits // 8,
                "weights": {r: modelinfo.weight_bytes(module.graphs[r])
                            for r in ("target", "draft")},
                "max_context": min((c for c in ctx if c is not None), default=None)}
        return self._pair

    @property
    def module(self):
        return self._loaded()[0]

    @property
    def meta(self):
        return self._loaded()[1]

    def fact(self, name: str):
        if self.facts is None:
            self._loaded()
        return self.facts[name]

    def persist(self) -> None:
        """Write the tables to the disk cache if they grew since the last write."""
        from speccc.dse import diskcache
        if (len(self.table), len(self.fits)) != self._stored and self.facts is not None:
            diskcache.save(self.cache_path, {"table": self.table, "fits": self.fits,
                                             "facts": self.facts})
            self._stored = (len(self.table), len(self.fits))

    # ------------------------------------------------------------ cost tables ----
    def graph(self, hw_key: str, mapping_id: tuple, role: str, study: Study):
        """@role with the mapping's devices; mapping_id = (mapping, its solve shape for
        this role: mapping.solve_shape)."""
        mapping, shape = mapping_id
        return self.variant(hw_key, mapping, study,
                            {role: shape} if shape else None).graphs[role]

    def variant(self, hw_key: str, mapping: str, study: Study, shapes: dict | None = None):
        """The module with the mapping's devices: the partition pass between the
        system's xPU (npu, or a GPU system's gpu) and pim, over every graph at the decode
        shape (a rule mapping) or over the graphs of `shapes` (role -> solve shape, a
        solved mapping), each at its own; `all-gpu` puts every non-glue op on the GPU."""
        hw = self.hws[hw_key]
        self._check_devices(hw, mapping)
        if mapping == "auto":
            return self.module
        key = (hw_key, mapping, tuple(sorted((shapes or {}).items())))
        if key not in self.variants:
            import copy

            from speccc.dse.mapping import partition_context, partition_passes
            from speccc.passmanager import make_pass
            # graphs this variant does not partition are shared, not copied (a draft's
            # variant need not copy the target)
            keep = {id(g): g for name, g in self.module.graphs.items()
                    if shapes and name not in shapes}
            mod = copy.deepcopy(self.module, keep)
            if mapping == "all-gpu":
                from speccc.costmodel import is_glue
                for g in mod.graphs.values():
                    for op in g.ops():
                        if not is_glue(op):
                            op.attrs["device"] = "gpu"
            else:
                P = partition_context(study.prompt_len, study.max_new_tokens)
                for name, opts in partition_passes(mapping, hw_path(self.texts[hw_key]), P,
                                                   shapes, hw.system.xpu, self.cost_model):
                    make_pass(name, opts).run(mod)
            self.variants[key] = mod
        return self.variants[key]

    @staticmethod
    def _check_devices(hw, mapping: str) -> None:
        why = missing_devices(hw, mapping)
        if why:
            raise SpecccError(why)

    def model_costs(self, hw_key, mapping, role, chans, batch, study):
        """`chans`: the (first, last + 1) channel ids the model owns, as the speculate
        pass assigns them (the draft first), so a preset's channel groups apply;
        `mapping`: the mapping id (mapping, solve shape) as `graph` takes it."""
        key = (hw_key, mapping, role, chans, batch)
        mc = self.costs.get(key)
        if mc is None:
            from speccc.runtime.costs import ModelCosts
            graph = self.graph(hw_key, mapping, role, study)
            # shapes whose solved mapping came out the same share one price cache
            same = (hw_key, mapping[0], role, chans, batch,
                    tuple(op.attrs.get("device") for op in graph.ops()))
            mc = self.costs[key] = self.costs.get(same) or ModelCosts(
                graph, self.hws[hw_key], {"g": list(range(*chans))}, ["g"], "auto", batch,
                "op", self.cost_model)
            self.costs[same] = mc
        return mc

    def fwd(self, key, role, T, P, study) -> Fwd:
        """One forward with its host transfers, as Session.launch_* price them."""
        hw_key, mapping, chans, batch = key
        k = (hw_key, mapping, role, chans, batch, T, P)
        f = self.table.get(k)
        if f is None:
            from speccc.runtime.costs import link_task
            mc = self.model_costs(hw_key, mapping, role, chans, batch, study)
            hw = self.hws[hw_key]
            # logits back: a verify's every position, a draft step's or the prompt
            # pass's last one (Session.prefill returns one row per request)
            rows = (self.fact("logit_bytes") * self.fact("vocab") * batch
                    * (T if role == "target" and P > 0 else 1))
            specs = [link_task(hw, "h2d", 8 * T * batch), *mc.forward(T, P, prefill=P == 0),
                     link_task(hw, "d2h", rows)]
            f = self.table[k] = _sum(specs)
        return f

    def kv(self, key, role, action, entries, study) -> Fwd:
        if entries <= 0:
            return ZERO
        hw_key, mapping, chans, batch = key
        k = (hw_key, mapping, role, chans, batch, action, entries)
        f = self.table.get(k)
        if f is None:
            mc = self.model_costs(hw_key, mapping, role, chans, batch, study)
            f = self.table[k] = _sum(mc.kv(action, entries))
        return f

    # ------------------------------------------------------------ a point --------
    def channels(self, point: dict, hw) -> tuple[int, int, bool] | str:
        """(draft channels, target channels, shared?) as the speculate pass splits them,
        or why the split is impossible."""
        if hw.pim is None:          # a GPU-only system: both models in the GPUs' memory
            return 1, 1, True    # (one nominal channel group: no PIM to split)
        n = hw.pim.channels
        own = preset_split(hw) if point["schedule"] != "none" else 0
        if point["schedule"] == "none" or (point["schedule"] == "serial"
                                           and point["draft_channels"] == 0 and not own):
            return n, n, True
        d = point["draft_channels"] or own or self.auto_draft_channels(n)
        if d >= n:
            return f"draft_channels {d} leaves no channel of {n} for the target"
        return d, n - d, False

    def auto_draft_channels(self, n: int) -> int:
        """The draft's share of n channels in proportion to its weights (at least one
        each), as the speculate pass splits them."""
        weights = self.fact("weights")
        return max(1, min(n - 1, round(n * weights["draft"] / sum(weights.values()))))

    def evaluate(self, study: Study, pid: int) -> dict:
        p = study.space.point(pid)
        hw_key = study.hw_key(p)
        hw = self.hws[hw_key]
        why = self._infeasible(p, hw, study)
        if isinstance(why, str):
            return _row(False, note=why)
        _, _, shared = why
        B, N, n0, g = p["batch"], study.max_new_tokens, study.prompt_len, p["gamma"]
        spans = self.spans(why)
        keys = {r: (hw_key, self.mapping_id(p, r, spans[r]), spans[r], B)
                for r in ("target", "draft")}
        form, _ = FORMS[p["schedule"]]
        s = accept_stats(study.alphas, g)
        its = []
        for P in (n0, n0 + N // 2, n0 + N - 1):   # Simpson over the context growth
            ctx = _Ctx(self, keys, P, shared, study)
            its.append(form(ctx, g, s))
        w = (1 / 6, 4 / 6, 1 / 6)
        it_ns = sum(wi * it.ns for wi, it in zip(w, its))
        it_pj = sum(wi * it.pj for wi, it in zip(w, its))
        e, var = its[0].tokens, its[0].var
        pre = self.fwd(keys["target"], "target", n0, 0, study)
        if p["schedule"] != "none":   # the draft's prompt pass is its first forward
            pre += self.fwd(keys["draft"], "draft", n0 + 1, 0, study)
        iters = (N - 1) / e
        # the batch runs until its slowest request is done (expected max of B)
        iters_all = iters + _zmax(B) * math.sqrt((N - 1) * var / e ** 3)
        t_end = pre.ns + iters_all * it_ns
        # + the standby power over the run (PIM DRAM background, GPU static), as the
        # runtime's report adds it
        energy = pre.pj + iters_all * it_pj + standby_pj(hw, t_end)
        itl = it_ns / e / 1e6
        ept = energy / 1e9 / (B * N)
        return _row(True, tokens_per_s=B * N / (t_end * 1e-9), itl_ms=itl,
                    energy_per_token_mj=ept, edp=itl * ept, accept_len=e)

    @staticmethod
    def spans(split: tuple) -> dict:
        """role -> the (first, last + 1) channel ids it owns, from `channels`' split (the
        draft first, as the speculate pass assigns them; shared: both own them all)."""
        dch, tch, shared = split
        return ({"target": (0, tch), "draft": (0, tch)} if shared
                else {"draft": (0, dch), "target": (dch, dch + tch)})

    @staticmethod
    def mapping_id(p: dict, role: str, span: tuple) -> tuple:
        """(mapping, the shape and channels it is solved at for role, or None): part of
        every cost key, so a solved mapping's prices are per (batch, γ, channel span) and
        a rule mapping's shared."""
        return p["mapping"], solve_shape(p["mapping"], role, p["schedule"], p["gamma"],
                                         p["batch"], span)

    def split(self, p: dict, study: Study) -> tuple | str:
        """The point's channel split (draft, target, shared?), or why it is infeasible."""
        return self._infeasible(p, self.hws[study.hw_key(p)], study)

    def _infeasible(self, p, hw, study):
        key = (study.hw_key(p), p["mapping"], p["schedule"], p["draft_channels"],
               p["batch"], study.prompt_len + study.max_new_tokens)
        if key not in self.fits:
            self.fits[key] = self._fits(p, hw, study)
        return self.fits[key]

    def _fits(self, p, hw, study):
        from speccc.runtime.capacity import model_bytes
        why = missing_devices(hw, p["mapping"])    # a system file's devices (speccc.hw.system)
        if why:
            return why
        ctx = study.prompt_len + study.max_new_tokens
        max_context = self.fact("max_context")
        if max_context is not None and ctx > max_context:
            return (f"prompt ({study.prompt_len}) + max_new_tokens "
                    f"({study.max_new_tokens}) exceeds the models' context of "
                    f"{max_context} positions")
        if p["schedule"] == "pipeinfer" and p["batch"] > 1:
            return ("pipeinfer's closed form models one request (batch 1 only; "
                    "`speccc run --batch` simulates batched pipeinfer)")
        split = self.channels(p, hw)
        if isinstance(split, str):
            return split
        dch, tch, shared = split
        if hw.system.xpu == "gpu":
            from speccc.runtime.capacity import gpu_system_fits
            roles = ("target",) if p["schedule"] == "none" else ("target", "draft")
            why = gpu_system_fits(hw, p["mapping"], {
                r: model_bytes(self.module.graphs[r], ctx, p["batch"]) for r in roles})
            return why or split
        per_ch = hw.derived()["capacity_bytes"] / hw.pim.channels
        need = {r: sum(model_bytes(self.module.graphs[r], ctx, p["batch"]))
                for r in ("target", "draft")}
        if p["schedule"] == "none":
            need["draft"] = 0
        if shared and need["target"] + need["draft"] > per_ch * tch:
            return (f"does not fit {hw.name}: {(need['target'] + need['draft']) / 2**30:.2f}"
                    f" GiB > {per_ch * tch / 2**30:.2f} GiB")
        for role, n in (("target", tch), ("draft", dch)):
            if not shared and need[role] > per_ch * n:
                return (f"@{role} does not fit its {n} channels of {hw.name}: "
                        f"{need[role] / 2**30:.2f} GiB > {per_ch * n / 2**30:.2f} GiB")
        return split

    # ------------------------------------------------------------ the runtime ----
    def simulate(self, study: Study, pid: int) -> dict:
        """The point on the discrete-event runtime (`speccc run`'s `simulate`)."""
        import copy

        from speccc.passmanager import make_pass
        from speccc.runtime.runner import RunConfig, simulate
        p = study.space.point(pid)
        hw_key = study.hw_key(p)
        why = self._infeasible(p, self.hws[hw_key], study)
        if isinstance(why, str):
            return _row(False, note=why)
        spans = self.spans(why)
        shapes = {r: s for r in ("target", "draft")
                  if (s := self.mapping_id(p, r, spans[r])[1]) is not None}
        mod = copy.deepcopy(self.variant(hw_key, p["mapping"], study, shapes or None))
        opts = {"schedule": p["schedule"], "gamma": str(p["gamma"]),
                "draft_channels": str(0 if p["schedule"] == "none" else p["draft_channels"]),
                "batch": str(p["batch"]),
                "hw": hw_path(self.texts[hw_key]), "placement": "auto"}
        make_pass("speculate", opts).run(mod)
        alphas = None if study.trace else list(study.alphas)
        cfg = RunConfig(max_new_tokens=study.max_new_tokens, prompt_len=study.prompt_len,
                        acceptance=alphas, acceptance_trace=list(study.trace or []) or None,
                        seed=study.seed, cost_model=study.cost_model)
        try:
            rep, _ = simulate(mod, cfg, self.meta)
        except SpecccError as err:          # the runtime's own checks (e.g. capacity)
            return _row(False, note=str(err))
        itl, ept = rep["itl_ms"], rep["energy_per_token_mj"]
        return _row(True, tokens_per_s=rep["tokens_per_s"], itl_ms=itl,
                    energy_per_token_mj=ept, edp=itl * ept,
                    accept_len=rep["mean_acceptance_length"] or 1.0)


class _Ctx:
    """What a closed form sees: costs at one context length."""

    def __init__(self, ev, keys, P, shared, study):
        self.ev, self.keys, self.P, self.shared, self.study = ev, keys, P, shared, study

    def fwd(self, role, T) -> Fwd:
        return self.ev.fwd(self.keys[role], role, T, self.P, self.study)

    def kv(self, role, action, entries) -> Fwd:
        return self.ev.kv(self.keys[role], role, action, entries, self.study)


def missing_devices(hw, mapping: str) -> str | None:
    """Why `hw` cannot run `mapping` (a GPU system has no NPU, a GPU-only one no PIM, a
    device preset no GPU), else None."""
    if mapping == "all-gpu" and hw.gpu is None:
        return f"mapping all-gpu: {hw.name} has no GPU"
    if mapping != "all-gpu" and hw.pim is None:
        return f"mapping {mapping}: {hw.name} has no PIM (its only mapping is all-gpu)"
    if mapping == "auto" and hw.npu is None:    # auto picks per op between npu and pim
        return (f"mapping auto: {hw.name} has no NPU (its xPU is a {hw.system.xpu}; use "
                "attacc, all-pim, specpim or all-gpu)")
    return None


def preset_split(hw) -> int:
    """The draft group's channel count of a preset whose channel groups are named after
    the models (draft first, as the speculate pass gives them), else 0."""
    names = [g.name for g in hw.pim.groups]
    if names[:1] != ["draft"] or "target" not in names:
        return 0
    return hw.group("draft").hi - hw.group("draft").lo


def _sum(specs) -> Fwd:
    return Fwd(sum(s.dur for s in specs), sum(s.energy for s in specs),
               sum(s.dur for s in specs if "npu" in s.resources),
               sum(s.dur for s in specs if "link" in s.resources))


def _zmax(n: int) -> float:
    """Expected maximum of n standard normals (Blom's approximation)."""
    if n <= 1:
        return 0.0
    from statistics import NormalDist
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def _row(feasible: bool, note: str = "", **m) -> dict:
    return {"feasible": int(feasible), **{k: m.get(k) for k in METRICS[1:-1]}, "note": note}
