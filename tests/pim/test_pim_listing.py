"""Listing grammar, canonical printer, located errors, and fuzzing."""
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speccc.errors import ParseError, SpecccError
from speccc.hw import load_hw
from speccc.targets.pim.emulator import PimEmulator
from speccc.targets.pim.isa import OPS
from speccc.targets.pim.listing import (Affine, Loop, check_ranges, cmd, format_program,
                                        loop, parse)

EXAMPLE = """\
.hw aim-gddr6
# a full-line comment
@5 ACT ch=0 bank=3 row=12   # trailing comment
loop t 4 {  # tiles
  loop c 64 {
    MAC.ab ch=0 row=12+t col=c slot=c acc=0
    WRGB ch=0 slot=c src=64*t+c+64
  } # end inner
}
AF ch=1 acc=0 fn=relu
loop 2 {
  SYNC
}
"""


def test_roundtrip_and_canonical_form():
    p = parse(EXAMPLE, "ex.pim")
    text = format_program(p)
    assert parse(text, "again.pim") == p
    assert format_program(parse(text)) == text          # byte-deterministic fixpoint
    assert "WRGB ch=0 slot=c src=64+c+64*t" in text      # canonical affine order
    assert "@5 ACT ch=0 bank=3 row=12 # trailing comment" in text
    assert "  } # end inner" in text
    assert p.hw == "aim-gddr6"


def test_operand_order_and_defaults_are_canonical():
    a = parse("MAC.ab acc=1 slot=2 col=3 row=4 ch=0 pc=0 sel=0")
    b = parse("MAC.ab ch=0 row=4 col=3 slot=2 acc=1")
    assert a == b
    assert format_program(a) == "MAC.ab ch=0 row=4 col=3 slot=2 acc=1\n"


def test_affine_arithmetic():
    v = Affine.of("3*i-2+j+i") + 5
    assert str(v) == "3+4*i+j" and v.eval({"i": 2, "j": 1}) == 12
    assert str(Affine.of("-i")) == "-i" and str(Affine.of(0)) == "0"
    assert parse("loop i 2 {\nACT ch=0 bank=i*2 row=0\n}").body[0].body[0].arg("bank") == \
        Affine.of("2*i")


def test_builders_match_parser():
    built = (loop("g", 8, [cmd("WRGB", ch=0, slot="g", src="g+8")]),)
    assert parse(format_program(type(parse(""))(built))).body == built


@pytest.mark.parametrize("text,where,msg", [
    ("ACT ch=0 bank=1 row=2 +\n", "1:24", "syntax error"),
    ("\n\n  FOO ch=1\n", "3:3", "unknown command FOO"),
    ("ACT ch=0 bank=1\n", "1:1", "ACT needs operand 'row'"),
    ("ACT ch=0 bank=1 row=2 row=3\n", "1:23", "operand 'row' given twice"),
    ("PRE ch=0 bank=1 row=2\n", "1:17", "PRE has no operand 'row'"),
    ("loop 3 {\n  ACT ch=0 bank=1 row=i\n}\n", "2:3", "row uses 'i', which no enclosing loop"),
    ("loop i 3 {\n  loop i 2 {\n  SYNC\n  }\n}\n", "2:3", "shadows"),
    ("loop i 3 {\n  @4 SYNC\n}\n", "2:3", "stamps are only allowed outside loops"),
    ("loop 0 {\n}\n", "1:1", "loop count must be at least 1"),
    ("AF ch=0 acc=0 fn=tanh\n", "1:15", "fn must be one of relu, gelu, silu"),
    ("loop 3 {\n  SYNC\n", "3:1", "syntax error"),
    ("ACT ch=0 bank=1 row=2 $\n", "1:23", "unexpected character"),
])
def test_parse_errors_are_located(text, where, msg):
    with pytest.raises(ParseError) as err:
        parse(text, "f.pim")
    assert str(err.value).startswith(f"f.pim:{where}: ")
    assert msg in str(err.value)


def test_range_error_message():
    text = "\n" * 11 + "    ACT ch=0 bank=17 row=0\n"
    with pytest.raises(SpecccError) as err:
        check_ranges(parse(text, "file.pim"), load_hw("aim-gddr6"))
    assert str(err.value) == \
        "file.pim:12:5: bank 17 out of range (preset aim-gddr6 has 16 banks per channel)"


def test_range_checks_cover_loop_iterations():
    hw = load_hw("hbm-pim")
    ok = parse("loop r 4 {\n  ACT ch=7 bank=2*r row=16383-r\n}\n", "ok.pim")
    check_ranges(ok, hw)
    bad = parse("loop r 9 {\n  ACT ch=0 bank=4*r row=0\n}\n", "b.pim")
    with pytest.raises(SpecccError, match=r"b.pim:2:3: bank 32 \(from bank=4\*r\) out of range"
                                          r" \(preset hbm-pim has 32 banks per channel\)"):
        check_ranges(bad, hw)
    with pytest.raises(SpecccError, match="slot 8 out of range"):
        check_ranges(parse("WRGB ch=0 slot=8 src=0"), hw)
    with pytest.raises(SpecccError, match="EWMUL reads 8 slots"):
        check_ranges(parse("EWMUL ch=0 acc=0 slot=1"), hw)


# ---------------------------------------------------------------- fuzzing -----
OPERAND_VALUES = st.one_of(st.integers(0, 40).map(str), st.sampled_from(["i", "2*i+1", "j-1"]))


@st.composite
def command_text(draw, bound):
    op = draw(st.sampled_from(sorted(OPS)))
    spec = OPS[op]
    names = list(spec.required) + draw(st.lists(st.sampled_from(spec.optional or ("ch",)),
                                                max_size=1, unique=True))
    names = list(dict.fromkeys(names))
    parts = [op]
    for n in names:
        if n == "fn":
            parts.append("fn=" + draw(st.sampled_from(["relu", "silu", "gelu"])))
        else:
            v = draw(OPERAND_VALUES)
            if not bound and not v.isdigit():
                v = "1"
            parts.append(f"{n}={v}")
    return " ".join(parts)


@st.composite
def listing_text(draw):
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            body = [draw(command_text(True)) for _ in range(draw(st.integers(1, 3)))]
            lines.append(f"loop i {draw(st.integers(1, 3))} {{")
            lines += ["  loop j 2 {", *["    " + b for b in body], "  }"] \
                if draw(st.booleans()) else ["  " + b.replace("j", "i") for b in body]
            lines.append("}")
        else:
            lines.append(draw(command_text(False)) + draw(st.sampled_from(["", "  # note"])))
    return "\n".join(lines) + "\n"


JUNK = st.text(alphabet="ACTMRDW.ab=+-*#{}@ \n0123456789chijkrowbanksl", max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(listing_text(), JUNK,
                 st.tuples(listing_text(), st.integers(0, 200), JUNK).map(
                     lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:])))
def test_fuzz_parse_roundtrips_or_locates(text):
    try:
        prog = parse(text, "fz.pim")
    except ParseError as err:
        assert re.match(r"^fz\.pim:\d+:\d+: ", str(err)), str(err)
        return
    out = format_program(prog)
    assert parse(out, "fz2.pim") == prog
    assert format_program(parse(out)) == out
    emu = PimEmulator(load_hw("aim-gddr6"))           # parseable but maybe illegal:
    emu.set_input(np.arange(64 * 16, dtype=np.float32))
    try:                                              # a located error, never a crash
        emu.run(prog)
    except SpecccError as err:
        assert re.match(r"^fz\.pim:\d+:\d+: ", str(err)), str(err)


def test_loop_nodes_keep_positions():
    p = parse("\n\nloop k 2 {\n  SYNC\n}\n")
    assert isinstance(p.body[0], Loop) and p.body[0].line == 3 and p.body[0].body[0].line == 4
