"""Independent checker: emulator traces pass; mutated traces fail at the right line."""
import copy
import random
import re

import pytest
from click.testing import CliRunner

from speccc.cli.main import main
from speccc.errors import CheckFailed, SpecccError
from speccc.hw import load_hw
from speccc.targets.pim.checker import check_program, check_trace, flatten
from speccc.targets.pim.emulator import format_trace, time_program
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import parse

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]


def stamped_gemv(name, M=128, K=512, channels=(0,)):
    hw = load_hw(name)
    prog = gemv_program(hw, plan_matrix(hw, M, K, channels=channels))
    res = time_program(prog, hw, record=True)
    return hw, format_trace(res.trace, name).splitlines(), res


def check_lines(hw, lines, name="m.pim"):
    return check_program(parse("\n".join(lines) + "\n", name), hw)


def expect_failure(hw, lines, line_no, rule=None):
    with pytest.raises(CheckFailed) as err:
        check_lines(hw, lines)
    msg = str(err.value)
    assert msg.startswith(f"m.pim:{line_no}: "), msg
    if rule:
        assert rule in msg, msg
    return msg


@pytest.mark.parametrize("name", PRESETS)
def test_emulator_trace_passes(name):
    hw, lines, res = stamped_gemv(name, 256, 1024, channels=(0, 1))
    rep = check_lines(hw, lines)
    assert rep.stamped and rep.commands == len(lines) - 1


def _cmd_lines(lines, op):
    return [i for i, l in enumerate(lines) if re.match(rf"^@\d+ {re.escape(op)} ", l)]


def _set_of(e):
    return (e.args["ch"], e.args.get("pc", 0), e.args.get("sel", 0))


@pytest.mark.parametrize("name", PRESETS)
def test_deleting_an_act_fails_at_the_first_user(name):
    hw, lines, _ = stamped_gemv(name)
    entries = flatten(parse("\n".join(lines) + "\n", "m.pim"))
    acts = [k for k, e in enumerate(entries) if e.op == "ACT.ab"]
    for k in acts[1:4]:
        user = next(e for e in entries[k + 1:] if e.op == "MAC.ab"
                    and _set_of(e) == _set_of(entries[k]))
        idx = entries[k].line - 1
        mutated = lines[:idx] + lines[idx + 1:]
        msg = expect_failure(hw, mutated, user.line - 1)      # one line fewer above it
        assert "closed" in msg


@pytest.mark.parametrize("name", PRESETS)
def test_swapping_dependent_commands_fails(name):
    hw, lines, _ = stamped_gemv(name)
    idx = _cmd_lines(lines, "ACT.ab")[2]
    mac = next(j for j in range(idx + 1, len(lines)) if " MAC.ab " in lines[j]
               and _same_set(lines[idx], lines[j]))
    swapped = list(lines)
    swapped[idx], swapped[mac] = swapped[mac], swapped[idx]
    expect_failure(hw, swapped, idx + 1)


def _same_set(act, mac):
    def key(l):
        pc = re.search(r"pc=(\d+)", l)
        sel = re.search(r"sel=(\d+)", l)
        return (pc.group(1) if pc else "0", sel.group(1) if sel else "0")
    return key(act) == key(mac)


@pytest.mark.parametrize("name", PRESETS)
def test_moving_any_command_one_cycle_earlier_fails(name):
    """Every command the emulator issued sits at its earliest legal cycle, so one cycle
    earlier must break the constraint that bound it, reported at that line."""
    hw, lines, _ = stamped_gemv(name, 128, 1024)
    entries = flatten(parse("\n".join(lines) + "\n", "m.pim"))
    check_trace(entries, hw, "m.pim")
    rng = random.Random(7)
    candidates = [i for i, e in enumerate(entries) if "# auto" not in lines[e.line - 1]
                  and e.op != "SYNC" and e.cycle > 0]
    for idx in rng.sample(candidates, 25):
        moved = [copy.copy(e) for e in entries]
        moved[idx].cycle -= 1
        with pytest.raises(CheckFailed) as err:
            check_trace(moved, hw, "m.pim")
        msg = str(err.value)
        assert msg.startswith(f"m.pim:{entries[idx].line}: "), msg
        assert re.search(r"(t[A-Z][A-Za-z_]*|issue order) violated", msg), msg


def test_moving_the_first_mac_names_trcd_mac():
    hw, lines, _ = stamped_gemv("aim-gddr6")
    idx = next(i for i, l in enumerate(lines) if " MAC.ab " in l)
    stamp = int(lines[idx].split()[0][1:])
    lines[idx] = f"@{stamp - 1} " + lines[idx].split(" ", 1)[1]
    msg = expect_failure(hw, lines, idx + 1, "tRCD_MAC violated")
    assert "needs 56" in msg


def test_refresh_overdue_and_sync():
    hw = load_hw("hbm-pim")
    limit = 9 * hw.pim.timing.tREFI
    expect_failure(hw, ["@0 ACT ch=0 bank=0 row=0", f"@{limit + 1} PRE ch=0 bank=0"], 2,
                   "refresh overdue")
    expect_failure(hw, ["@0 ACT ch=0 bank=0 row=0", "@5 SYNC"], 2, "SYNC at cycle 5")
    expect_failure(hw, ["@0 ACT ch=0 bank=0 row=0", "@40 SYNC", "@30 ACT ch=1 bank=0 row=0"],
                   3, "before the SYNC")


def test_mixed_stamps_rejected_and_unstamped_listing_checked():
    hw = load_hw("aim-gddr6")
    with pytest.raises(SpecccError, match="every command carries an @cycle stamp"):
        check_lines(hw, ["@0 ACT ch=0 bank=0 row=0", "PRE ch=0 bank=0"])
    rep = check_lines(hw, ["ACT ch=0 bank=0 row=0", "RD ch=0 bank=0 row=0 col=0 dst=0"])
    assert not rep.stamped and rep.commands == 2
    expect_failure(hw, ["ACT ch=0 bank=0 row=0", "RD ch=0 bank=0 row=3 col=0 dst=0"], 2,
                   "open at row 0")


def test_cli_check_exit_codes(tmp_path):
    hw, lines, _ = stamped_gemv("hbm3-pim")
    good = tmp_path / "good.pim"
    good.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(main, ["asm", str(good), "--check"])
    assert r.exit_code == 0 and "check passed" in r.output, r.output
    idx = next(i for i, l in enumerate(lines) if " MAC.ab " in l)
    stamp = int(lines[idx].split()[0][1:])
    lines[idx] = f"@{stamp - 1} " + lines[idx].split(" ", 1)[1]
    bad = tmp_path / "bad.pim"
    bad.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(main, ["asm", str(bad), "--check"])
    assert r.exit_code == 1
    assert f"speccc: error: bad.pim:{idx + 1}: tRCD_MAC violated" in r.output
