"""Hardware descriptions (TOML presets) for the NPU, the PIM device, links and energy."""
from speccc.hw.config import (
    EnergyConfig,
    HwConfig,
    LinkConfig,
    NpuConfig,
    PimConfig,
    PimTiming,
    PuConfig,
    load_hw,
    preset_names,
)

__all__ = [
    "EnergyConfig", "HwConfig", "LinkConfig", "NpuConfig", "PimConfig", "PimTiming",
    "PuConfig", "load_hw", "preset_names",
]
