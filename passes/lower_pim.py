"""lower-pim: replace every PIM op with a `pim.kernel` op whose listings travel with the
module.

    speccc opt m.ir -p 'place{hw=aim-gddr6,bind=T=1:P=16},lower-pim{hw=aim-gddr6,bind=T=1:P=16}'

Rewrites: every op whose device is PIM (after `place`, which gives it its rows and
channels) becomes, in place, `pim.kernel {op = NAME, phases, listings, cycles, ns,
energy_pj, bytes_in, bytes_out, commands, roofline_ns, bound, efficiency, timing =
"emulator", ...its own attributes}` (speccc/ir/ops/kernel.py). The PIM target
(targets/pim/target.py) generates one listing per phase (codegen.kernel_for) into
`Module.listings` under `pim/GRAPH.NNNN.OP.PHASE.pim` (NNNN: the op's %N) and times
each on the emulator (programs equal up to rows and channel offsets are timed once).
Each graph gets `lowered_pim = [["hw", NAME], ["timed_programs", N]]`.
Guarantees: listings are byte-deterministic and identical to the ones `compile` wrote
before lowering was a pass; everything else in the IR is unchanged; the kernel op keeps
the op's semantics (the reference interpreter still runs the graph).
"""
from __future__ import annotations

from speccc.passes._lower import LowerPass
from speccc.passmanager import register_pass


@register_pass
class LowerPim(LowerPass):
    name = "lower-pim"
    summary = "replace PIM ops with pim.kernel ops (listings, emulator timing)"
    device = "pim"
