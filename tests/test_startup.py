"""Start-up stays light: `speccc --help` imports no heavy module (issue 16; the CPU figures
are benchmarks/bench_startup.py's, not a timed test)."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "ml_dtypes", "onnx", "networkx", "rich", "matplotlib", "scipy", "lark")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_cli_import_loads_no_heavy_module():
    mods = _modules_after("import speccc.cli")
    assert not [m for m in HEAVY if m in mods]


def test_help_loads_no_heavy_module():
    code = ("import sys; sys.argv = ['speccc', '--help']\nfrom speccc.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    mods = _modules_after(code)
    assert not [m for m in HEAVY if m in mods]


def test_ir_types_import_ml_dtypes_on_first_use():
    mods = _modules_after("from speccc.ir.types import DType; DType.f32.itemsize_bits")
    assert "ml_dtypes" not in mods
    mods = _modules_after("from speccc.ir.types import DType; DType.bf16.numpy")
    assert "ml_dtypes" in mods


def test_option_constants_agree_with_driver():
    from speccc import driver
    from speccc.cli import core_commands
    assert core_commands.DEFAULT_HW == driver.DEFAULT_HW
    assert core_commands.PRECISIONS == tuple(driver.PRECISIONS)


def test_itemsize_bits_agree_with_numpy():
    from speccc.ir.types import _PACKED_BITS, DType
    for d in DType:
        if d in _PACKED_BITS or d in (DType.bool, DType.string):
            continue
        assert d.itemsize_bits == 8 * d.numpy.itemsize, d
