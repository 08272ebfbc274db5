"""place: map the data of every op to its device; for PIM, weights and KV cache to
channels, banks and rows, with a capacity check.

    speccc opt m.ir -p 'place{hw=hbm3-pim,bind=T=1:P=16,max_context=4096,split=draft:4}'

Rewrites: asks every registered target (`speccc.targets`) to place the module; the NPU
and the host keep nothing, the PIM target (targets/pim/placement.py) gives every PIM op
that holds data `pim_base_row`, `pim_rows`, `pim_channels` (its channel window) and
attention `pim_max_context`, allocating rows per channel shared by every graph.

Options: hw (preset name or .toml), bind (T=1:P=128), max_context (KV tokens per
attention; default: the largest bound KV length, P+T), split (GRAPH:N: graph @GRAPH gets
PIM channels [0, N), the others the rest; SpecPIM's draft/target split).
After: every PIM op that holds weights or KV has a placement; every region fits the
preset, or the pass fails once with the totals (rows per bank needed vs available).
"""
from __future__ import annotations

from speccc.passes.infer_shapes import parse_bindings
from speccc.passmanager import Pass, register_pass
from speccc.targets import PlaceRequest, targets


@register_pass
class Place(Pass):
    name = "place"
    summary = "place PIM ops' weights and KV cache in channels/banks/rows; check capacity"
    hw: str = "hbm-pim"
    bind: list = None
    max_context: int = 0
    split: str = ""

    def run(self, module) -> None:
        from speccc.hw import load_hw
        hw = load_hw(self.hw)
        request = PlaceRequest(parse_bindings(self.bind), self.max_context, self.split)
        for t in targets().values():
            t.place(module, hw, request)
