"""HBM3-PIM: AttAcc's bank-level PIM on HBM3 (preset kind `hbm3-pim`).

Sources: scale-snu/attacc_simulator (pim_ramulator_src/HBM3-PIM.cpp, preset
HBM3_5.2Gbps / HBM3_8Gb_2R); the numbers are in speccc/hw/presets/hbm3-pim.toml.
Shared JEDEC rules: common.py.

What is HBM3-PIM's own: AttAcc's two ranks (stack IDs) are folded into one
pseudo-channel of twice the bank groups, so rank-level tFAW / tRRD apply per
pseudo-channel (conservative); one PU per bank; all-bank MACs (MACAB) are column
commands after ACTAB, spaced by nCCDAB under the power budget. HBM3's per-bank refresh
is not modelled: the controller refreshes all banks of a pseudo-channel.
"""
from __future__ import annotations

from speccc.targets.pim.standards import common
from speccc.targets.pim.standards.spec import (ACTS, MACS, Overhead as O, Rule as R,
                                               Standard)

RULES = (
    *common.COMMAND_BUS,
    *common.ACTIVATION,
    R("tFAW", "pc", ("ACTab",), ACTS, "tFAW",
      why="an ACTAB opens a row in every bank: speccc charges it a whole window"),
    R("tFAW", "pc", ("ACT",), ("ACTab",), "tFAW", why="an all-bank ACT needs an empty window"),
    *common.DATA_BUS,
    *common.RDMAC_TURNAROUND,
    R("tCCD_AB", "pc", ("MACab",), ("MACab",), "tCCD_AB",
      why="PU rate / power limit: AttAcc's nCCDAB between MACAB columns"),
    *common.PU_THROUGHPUT,
    *common.BANK_GROUP,
    *common.ROW_OPEN,
    R("tRCD_MAC", "bank", ACTS, MACS, "tRCD_MAC",
      why="a MACAB is a column command after ACTAB: AttAcc uses nRCDRD"),
    *common.ROW_CLOSE,
    *common.REFRESH,
    *common.PU_REGISTERS,
)

STANDARD = Standard(
    name="HBM3-PIM",
    doc="AttAcc-like bank-level PIM on HBM3, timings from attacc_simulator's HBM3-PIM",
    scopes={
        "channel": "an HBM3 channel's command bus",
        "pc": "an HBM3 pseudo-channel, AttAcc's two ranks folded into it",
        "bankgroup": "a bank group (the two ranks' groups numbered apart)",
        "bank": "a bank and the PU beside it (one PU per bank)",
        "slot": "one 32 B slot of the pseudo-channel's GEMV buffer",
        "acc": "the accumulator of every PU of a pseudo-channel",
    },
    rules=RULES,
    rdmac_latency="CL",
    rdmac_why="EST: AttAcc (attacc_simulator) gives no register read-out path; results are taken "
              "to leave like a bank read (CL), as HBM-PIM's do",
    mode_switch=(
        O("enter", "tRCDWR+3*tRRD_S+WL+tBL+tWR+tRP+WL+tBL",
          "EST: AttAcc publishes no mode sequence; HBM-PIM's (SAITPublic/PIMSimulator "
          "PIMKernel::changePIMMode) with HBM3 timings: SB->AB is four writes "
          "to the mode row 0x17ff of four banks (ACTs tRRD_S apart, the last one's row "
          "cycle: tRCDWR, WL+tBL, tWR, tRP), AB->AB-PIM one write of PIM_OP_MODE (WL+tBL); "
          "energy: 4 row activations + 5 bursts written", acts=4, bursts=5),
        O("exit", "WL+tBL+tRCDWR+tRRD_S+WL+tBL+tWR+tRP",
          "EST from PIMSimulator changePIMMode: AB-PIM->AB one PIM_OP_MODE write, AB->SB two "
          "writes to the mode row 0x1fff (the second's row cycle); energy: 2 activations + "
          "3 bursts", acts=2, bursts=3),
    ),
)
