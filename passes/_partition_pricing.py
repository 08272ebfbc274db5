"""How the partition pass prices ops: the whole device with the registered targets
(default, as the `cost` pass does), or, with `channels=` / `cost-model=`, the way the
runtime prices a model confined to a channel group (speccc.runtime.costs.ModelCosts):
the group's view of the hardware (`group_hw`: that many PIM channels, their PU
configuration, the NPU's external bandwidth scaled by their share) and the named cost
model (`estimators`: targets, targets-fast, roofline). `speccc dse` solves SpecPIM's
mapping for each model on the channels the point gives it, so the solver and the
evaluator see the same prices.

    partition{mapping=specpim,bind=T=5:P=72,batch=4,graphs=target,channels=8-31,cost-model=roofline}
"""
from __future__ import annotations

from dataclasses import dataclass

from speccc.errors import SpecccError


@dataclass(frozen=True)
class Pricing:
    hw: object                # the hardware ops and transfers are priced on
    model: object             # speccc.costmodel.CostModel
    text: str | None          # the graph's `cost_pricing` attribute (None: whole device)


def parse_channels(text: str, hw) -> list[int]:
    """'A-B' (inclusive) or 'A': channel ids of `hw`'s PIM, checked."""
    if hw.pim is None:
        raise SpecccError(f"partition: channels={text}: {hw.name} has no PIM channels")
    lo, sep, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise SpecccError(f"partition: channels={text}: expected FIRST-LAST channel ids "
                          "(e.g. channels=0-15)") from None
    n = hw.pim.channels
    if not 0 <= first <= last < n:
        raise SpecccError(f"partition: channels={text}: {hw.name} has channels 0-{n - 1} "
                          "(FIRST <= LAST)")
    return list(range(first, last + 1))


def pricing(hw, channels: str | None, cost_model: str | None) -> Pricing:
    from speccc.costmodel import CostModel
    from speccc.runtime.costs import COST_MODELS, estimators, group_hw
    if cost_model is not None and cost_model not in COST_MODELS:
        raise SpecccError(f"partition: cost-model={cost_model}: known: "
                          f"{', '.join(COST_MODELS)}")
    if channels is None and cost_model in (None, "targets"):
        return Pricing(hw, CostModel(hw), None)
    view = group_hw(hw, parse_channels(channels, hw)) if channels is not None else hw
    parts = [f"channels={channels}"] if channels is not None else []
    parts.append(f"cost-model={cost_model or 'targets'}")
    return Pricing(view, CostModel(view, estimators(cost_model or "targets")),
                   ",".join(parts))
