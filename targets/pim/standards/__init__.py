"""DRAM standards, one module each, Ramulator2-style: each owns its timing rule table.

    gddr6_aim.py   SK hynix AiM (GDDR6-PIM)       preset kind aim-gddr6
    hbm2_pim.py    Samsung HBM-PIM (HBM2)         preset kind hbm-pim
    hbm3_pim.py    AttAcc-like HBM3-PIM           preset kind hbm3-pim
    common.py      rule blocks they all share (JEDEC core, PIM register hazards)
    spec.py        the vocabulary: scopes, command classes, Rule, Standard

A standard is data (`spec.Standard`): what its scopes mean, the commands it accepts,
its rules in the order they are walked, completion latencies, refresh style. The timing
engine (timing.compile_rules -> scheduler.py, checker.py) walks the table of the
standard that the preset's `[pim] kind` names in STANDARDS below.

Adding a fourth standard is one new file here (copy the closest one; it defines
`STANDARD`) plus one registration line in STANDARDS. The preset schema validates
`[pim] kind` on its own (speccc/hw/config.py PIM_KINDS), so the new kind is named there
as well.
"""
from __future__ import annotations

from speccc.errors import SpecccError
from speccc.targets.pim.standards import gddr6_aim, hbm2_pim, hbm3_pim
from speccc.targets.pim.standards.spec import Standard

STANDARDS: dict[str, Standard] = {
    "aim-gddr6": gddr6_aim.STANDARD,
    "hbm-pim": hbm2_pim.STANDARD,
    "hbm3-pim": hbm3_pim.STANDARD,
}


def standard_for(hw) -> Standard:
    """The standard whose timing table applies to a hardware description."""
    kind = hw.pim.kind
    if kind not in STANDARDS:
        raise SpecccError(f"{hw.name}: no DRAM standard registered for [pim] kind {kind!r} "
                          f"(known: {', '.join(STANDARDS)}; see targets/pim/standards/)")
    return STANDARDS[kind]
