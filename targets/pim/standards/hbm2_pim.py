"""HBM2-PIM: Samsung HBM-PIM / Aquabolt-XL (preset kind `hbm-pim`).

Sources: SAITPublic/PIMSimulator's HBM2 timing set and umd-memsys/DRAMsim3's HBM2
configs; the numbers are in speccc/hw/presets/hbm-pim.toml. Shared JEDEC rules:
common.py.

What is HBM-PIM's own: HBM2 pseudo-channel mode (JESD235), so the data bus and the
activation window are per pseudo-channel; one FP16 SIMD unit serves a pair of banks
(all-bank commands pick the even or odd set with `sel`); in AB-PIM mode a MAC is a plain
column command sent to every bank group. HBM2's per-bank refresh (REFsb) is not
modelled: the controller refreshes all banks of a pseudo-channel.
"""
from __future__ import annotations

from speccc.targets.pim.standards import common
from speccc.targets.pim.standards.spec import (ACTS, MACS, Overhead as O, Rule as R,
                                               Standard)

RULES = (
    *common.COMMAND_BUS,
    *common.ACTIVATION,
    R("tFAW", "pc", ("ACTab",), ACTS, "tFAW",
      why="an AB-PIM ACT opens a row in every bank of the set: speccc charges a whole window"),
    R("tFAW", "pc", ("ACT",), ("ACTab",), "tFAW", why="an all-bank ACT needs an empty window"),
    *common.DATA_BUS,
    *common.RDMAC_TURNAROUND,
    R("tCCD_AB", "pc", ("MACab",), ("MACab",), "tCCD_AB",
      why="PU rate / power limit: AB-PIM columns reach every bank group, so tCCD_L apart"),
    *common.PU_THROUGHPUT,
    *common.BANK_GROUP,
    *common.ROW_OPEN,
    R("tRCD_MAC", "bank", ACTS, MACS, "tRCD_MAC",
      why="an AB-PIM MAC is a column command: the preset gives it the tRCD of a RD"),
    *common.ROW_CLOSE,
    *common.REFRESH,
    *common.PU_REGISTERS,
)

STANDARD = Standard(
    name="HBM2-PIM",
    doc="Samsung HBM-PIM (Aquabolt-XL), timings from PIMSimulator's HBM2 set",
    scopes={
        "channel": "an HBM2 channel's command bus",
        "pc": "an HBM2 pseudo-channel: its own data bus and activation window",
        "bankgroup": "a bank group of a pseudo-channel",
        "bank": "a bank; one SIMD unit serves an even/odd pair (banks_per_pu = 2)",
        "slot": "one 32 B GRF_A entry of a pseudo-channel (same copy in every unit)",
        "acc": "one GRF_B register index of every unit of a pseudo-channel",
    },
    rules=RULES,
    rdmac_latency="CL",
    rdmac_why="PIMSimulator: results leave GRF_B through the bank (MOV to the bank, then a "
              "normal RD with RL); speccc's RDMAC stands for that read, so it keeps CL",
    mode_switch=(
        O("enter", "tRCDWR+3*tRRD_S+WL+tBL+tWR+tRP+WL+tBL",
          "EST from SAITPublic/PIMSimulator PIMKernel::changePIMMode: SB->AB is four writes "
          "to the mode row 0x17ff of four banks (ACTs tRRD_S apart, the last one's row "
          "cycle: tRCDWR, WL+tBL, tWR, tRP), AB->AB-PIM one write of PIM_OP_MODE (WL+tBL); "
          "energy: 4 row activations + 5 bursts written", acts=4, bursts=5),
        O("crf", "tRCDWR+3*tCCD_L+WL+tBL",
          "EST from PIMSimulator PIMKernel::programCrf: the microkernel (32 x 32-bit "
          "instructions) is four bursts written to row 0x3fff, columns 4-7, in AB mode; "
          "energy: one activation + 4 bursts", acts=1, bursts=4),
        O("exit", "WL+tBL+tRCDWR+tRRD_S+WL+tBL+tWR+tRP",
          "EST from PIMSimulator changePIMMode: AB-PIM->AB one PIM_OP_MODE write, AB->SB two "
          "writes to the mode row 0x1fff (the second's row cycle); energy: 2 activations + "
          "3 bursts", acts=2, bursts=3),
    ),
)
