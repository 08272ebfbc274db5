"""Rule blocks every speccc standard shares: the JEDEC DRAM core, plus the ISA's PU hazards.

A standard's table (gddr6_aim.py, ...) splices these blocks around the rules that are its
own (how its all-bank PIM mode activates, streams MACs and reaches a MAC after ACT). The
blocks are in the order the table is walked. Latencies are expressions over the preset's
[pim.timing] names plus `tRDMAC` (= bursts of one RDMAC x tBL) and `tRDL` (the
standard's RDMAC latency); the numbers differ per
preset, the shape of these constraints does not. PIM MACs count as column reads of the
row buffer and WRGB as a bus write, so the JEDEC rules cover them.

Scopes (spec.LEVELS): `channel` command bus, `pc` pseudo-channel (data bus, activation
window), `bankgroup`, `bank` (all-bank commands touch every bank of their `sel` set;
PREA and REF all banks), `slot` one global-buffer slot, `acc` one accumulator index.
"""
from __future__ import annotations

from speccc.targets.pim.standards.spec import (ACTS, BUSRD, BUSWR, COLRD, KINDS, MACS, PRES,
                                               PUOPS, Rule as R)

COMMAND_BUS = (
    R("tCMD", "channel", KINDS, KINDS, "tCMD", why="one command per slot on the command bus"),
)

ACTIVATION = (
    R("tRRD_S", "pc", ("ACT",), ("ACT",), "tRRD_S", why="ACT to ACT, any bank group"),
    R("tFAW", "pc", ("ACT",), ("ACT",), "tFAW", 4, why="at most 4 ACTs in any tFAW window"),
)

DATA_BUS = (
    R("tCCD_S", "pc", COLRD, COLRD, "tCCD_S", why="column to column, any bank group"),
    R("tCCD_S", "pc", BUSWR, BUSWR, "tCCD_S", why="column to column, any bank group"),
    R("tBL", "pc", ("RD",), BUSRD, "tBL", why="read data occupy the bus"),
    R("tBL", "pc", BUSWR, BUSWR, "tBL", why="write data occupy the bus"),
    R("tRDMAC", "pc", ("RDMAC",), BUSRD, "tRDMAC", why="RDMAC data occupy the bus"),
    R("tRTW", "pc", ("RD",), BUSWR, "CL+tBL+2-WL", why="read-to-write bus turnaround"),
    R("tWTR_S", "pc", BUSWR, BUSRD, "WL+tBL+tWTR_S", why="write-to-read turnaround"),
)

# RDMAC -> write turnaround, apart from DATA_BUS because its form depends on the standard's
# RDMAC latency tRDL (gddr6_aim.py has its own)
RDMAC_TURNAROUND = (
    R("tRTW", "pc", ("RDMAC",), BUSWR, "tRDL+tRDMAC+2-WL", why="read-to-write bus turnaround"),
)

BANK_GROUP = (
    R("tRRD_L", "bankgroup", ("ACT",), ("ACT",), "tRRD_L", why="ACT to ACT, same bank group"),
    R("tCCD_L", "bankgroup", COLRD, COLRD, "tCCD_L", why="column to column, same bank group"),
    R("tCCD_L", "bankgroup", ("WR",), ("WR",), "tCCD_L", why="column to column, same bank group"),
    R("tWTR_L", "bankgroup", ("WR",), COLRD, "WL+tBL+tWTR_L",
      why="write-to-read turnaround, same bank group"),
)

ROW_OPEN = (
    R("tRC", "bank", ACTS, ACTS, "tRC", why="row cycle: ACT to ACT of one bank"),
    R("tRCD", "bank", ACTS, ("RD",), "tRCD", why="row to column delay"),
    R("tRCDWR", "bank", ACTS, ("WR",), "tRCDWR", why="row to column delay for a write"),
)

ROW_CLOSE = (
    R("tRAS", "bank", ACTS, PRES, "tRAS", why="a row stays open tRAS before PRE"),
    R("tRP", "bank", PRES, ACTS, "tRP", why="precharge before the next ACT"),
    R("tRTP", "bank", COLRD, PRES, "tRTP", why="read to precharge"),
    R("tWR", "bank", ("WR",), PRES, "WL+tBL+tWR", why="write recovery before precharge"),
)

REFRESH = (
    R("tRC", "bank", ACTS, ("REF",), "tRC", why="a REF waits for the row cycle"),
    R("tRP", "bank", PRES, ("REF",), "tRP", why="a REF needs precharged banks"),
    R("tRFC", "bank", ("REF",), ACTS + ("REF",), "tRFC", why="refresh blocks the banks"),
)

PU_THROUGHPUT = (
    R("tPU", "pc", ("MACab",), ("MACab",), "tPU", tokens=True,
      why="PU throughput: an all-bank MAC of n tokens keeps every PU of the set busy "
          "ceil(n / mac_lanes) PU clocks (tPU = command cycles per PU clock)"),
)

PU_REGISTERS = (    # data hazards of the PIM ISA's registers, not DRAM timing
    R("tGB", "slot", ("WRGB",), MACS + ("EWMUL", "EWADD"), "WL+tBL",
      why="global-buffer data land WL+tBL after WRGB"),
    R("tMACL", "acc", MACS, ("RDMAC",) + PUOPS, "tMACL", why="accumulator ready after the pipeline"),
    R("tPUOP", "acc", PUOPS, ("RDMAC",) + PUOPS + MACS, "tPUOP",
      why="a PU op's result is ready after its pipeline"),
)
