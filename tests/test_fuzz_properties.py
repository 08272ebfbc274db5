"""Issue 17 item 6, property side: the IR parser, the listing parser and the hardware
loader either accept a mutated file or raise a SpecccError (one line, located); never
another exception (UnicodeDecodeError, RecursionError, OverflowError, ...). Mutations:
tests/fuzz_mutants.py (non-UTF-8 bytes, deep nesting, huge counts, extreme numbers)."""
from __future__ import annotations

import os
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speccc.errors import SpecccError
from fuzz_mutants import extreme_floats, extreme_ints, mutated

# SPECCC_FUZZ_EXAMPLES=5000 for a longer local hunt
SETTINGS = settings(max_examples=int(os.environ.get("SPECCC_FUZZ_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

IR_SEED = b"""graph @target(%x: tensor<1x?Tx8xf32>, %ids: tensor<1x?Txi64>) -> ("y": tensor<1x?Tx8xf32>) attributes {note = "a [b] c", axes = [0, [1, 2]], eps = 1.0e-05} {
  %0 = const() {value = dense<tensor<2xi64> [1, -1]>} : tensor<2xi64>
  %1 = relu(%x) : tensor<1x?Tx8xf32>
  %2 = add(%1, %x) : tensor<1x?Tx8xf32>
  %3 = gather(%1, %ids) {axis = 0} : tensor<1x?Tx?Tx8xf32>
  return %2
}
"""
LISTING_SEED = b""".hw aim-gddr6
# a comment
loop r 4 { # rows
  loop g 8 {
    WRGB ch=0 slot=g src=g
  }
  ACT.ab ch=0 row=r
  loop c 8 {
    MAC.ab ch=0 row=r col=c slot=c acc=0
  }
  RDMAC ch=0 acc=0 dst=r
  PRE.ab ch=0
}
"""


def _one_line(err: SpecccError) -> None:
    assert "\n" not in str(err).strip(), str(err)


def _decode(data: bytes) -> str:
    from speccc.textio import decode
    return decode(data, "<fuzz>")


@SETTINGS
@given(mutated([IR_SEED]))
def test_ir_parser_total(data):
    from speccc.ir.parser import parse_module
    from speccc.ir.verifier import verify
    try:
        verify(parse_module(_decode(data), "<fuzz>"))
    except SpecccError as e:
        _one_line(e)


@SETTINGS
@given(mutated([LISTING_SEED]))
def test_listing_parser_total(data):
    from speccc.hw import load_hw
    from speccc.targets.pim.listing import check_ranges, parse, work
    try:
        prog = parse(_decode(data), "<fuzz>")
        check_ranges(prog, load_hw("aim-gddr6"))
        work(prog)  # computed, never expanded: any count is fine
    except SpecccError as e:
        _one_line(e)


_PRESETS = resources.files("speccc.hw") / "presets"
TOML_SEEDS = [(_PRESETS / f"{n}.toml").read_bytes() for n in ("hbm-pim", "aim-gddr6")]


@SETTINGS
@given(mutated(TOML_SEEDS))
def test_hw_loader_total(tmp_path, data):
    p = tmp_path / "fuzz.toml"
    p.write_bytes(data)
    _load_or_clean_error(p)


def _load_or_clean_error(path) -> None:
    """A one-line SpecccError, or a preset whose headline figures are all finite."""
    from speccc.hw import load_hw
    try:
        cfg = load_hw(path)
    except SpecccError as e:
        _one_line(e)
        return
    assert all(v == v and v != float("inf") for v in cfg.derived().values())


@SETTINGS
@given(st.sampled_from(["tRC", "tRAS", "tFAW", "tREFI", "CL", "columns", "channels",
                        "pseudo_channels", "act_pj", "tCK_ns", "rows", "lanes"]),
       st.one_of(extreme_ints, extreme_floats))
def test_hw_extreme_values(tmp_path, key, value):
    import re
    text = TOML_SEEDS[0].decode()
    text = re.sub(rf"(?m)^{key} = [^ #\n]+", f"{key} = {_toml(value)}", text, count=1)
    p = tmp_path / "x.toml"
    p.write_text(text)
    _load_or_clean_error(p)


def _toml(v) -> str:
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf"
                                     if v == float("-inf") else repr(v))
    return str(v)
