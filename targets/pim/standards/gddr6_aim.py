"""GDDR6-AiM: SK hynix Accelerator-in-Memory (preset kind `aim-gddr6`).

Sources: CENT (ASPLOS'25) / arkhadem/aim_simulator (Ramulator 2.0 based) for the
all-bank command set and its timings, ISSCC'22 for the organisation; the numbers are
in speccc/hw/presets/aim-gddr6.toml. Shared JEDEC rules: common.py.

What is GDDR6-AiM's own: GDDR6 has no pseudo-channels, so the `pc` scope is the channel
(activation window and data bus are per channel); every bank has its own PU; an
all-bank MAC (MAC_ABK) has its own row-to-column delay (tRCD_MAC) and column spacing
(tCCD_AB). GDDR6 per-bank refresh (REFpb) is not modelled: the controller refreshes
all banks.
"""
from __future__ import annotations

from speccc.targets.pim.standards import common
from speccc.targets.pim.standards.spec import (ACTS, BUSWR, MACS, Overhead as O, Rule as R,
                                               Standard)

RULES = (
    *common.COMMAND_BUS,
    *common.ACTIVATION,
    R("tFAW", "pc", ("ACTab",), ACTS, "tFAW",
      why="AiM's ACT4/ACT16 limits are not public; speccc lets an all-bank ACT spend a whole window"),
    R("tFAW", "pc", ("ACT",), ("ACTab",), "tFAW", why="an all-bank ACT needs an empty window"),
    *common.DATA_BUS,
    R("tRTW", "pc", ("RDMAC",), BUSWR, "tRDL+tRDMAC",
      why="RD_MAC data come from registers (tRDL 0) and a write's data follow WL later, so "
          "the bus is free once the read data have left (aim_simulator: nCLREG + nBL + 3 - "
          "nCWL + nWPRE, <= nBL with their nCWL)"),
    R("tCCD_AB", "pc", ("MACab",), ("MACab",), "tCCD_AB",
      why="PU rate / power limit: CENT streams one MAC_ABK column every tCCD_AB"),
    *common.PU_THROUGHPUT,
    *common.BANK_GROUP,
    *common.ROW_OPEN,
    R("tRCD_MAC", "bank", ACTS, MACS, "tRCD_MAC",
      why="CENT gives MAC_ABK its own, longer tRCD after ACT"),
    *common.ROW_CLOSE,
    *common.REFRESH,
    *common.PU_REGISTERS,
)

STANDARD = Standard(
    name="GDDR6-AiM",
    doc="SK hynix AiM (GDDR6-PIM), timings as CENT's AiM model configures them",
    scopes={
        "channel": "a GDDR6 channel's command bus",
        "pc": "the channel itself (GDDR6 has no pseudo-channels: pseudo_channels = 1)",
        "bankgroup": "a GDDR6 bank group",
        "bank": "a bank and the PU beside it (one PU per bank)",
        "slot": "one burst-sized slot of the channel's global buffer (WR_GB)",
        "acc": "the MAC register of every PU (RD_MAC reads them together)",
    },
    rules=RULES,
    rdmac_latency="0",
    rdmac_why="arkhadem/aim_simulator src/dram/impl/GDDR6.cpp: RD_MAC (RDMAC16) reads the MAC "
              "registers with nCLREG = 0, so its data follow after the bus time nBL alone "
              "(2 cycles here: tRDMAC), not after a bank read's CL",
    mode_switch=(
        O("enter", "32", "CENT's AiM model (ANCHORS.md): a mode switch costs 32 cycles; AiM's "
                         "controller blocks normal accesses while PIM commands are outstanding; "
                         "EST energy 0: CENT models the switch as a delay (mode-register "
                         "commands), no row opened and no data moved"),
        O("exit", "32", "the same switch back to normal accesses (CENT: 32 cycles); EST energy 0 "
                        "as enter"),
    ),
)
