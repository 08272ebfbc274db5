"""`speccc asm`: canonical printing, --run, --check, --json, and bad input."""
import json

from click.testing import CliRunner

from speccc.cli.main import main
from speccc.hw import load_hw
from speccc.targets.pim.gemv import gemv_program
from speccc.targets.pim.layout import plan_matrix
from speccc.targets.pim.listing import format_program

MESSY = """.hw hbm3-pim
loop c 2 {   # two channels
  ACT.ab row=5 ch=c
  loop g 32 {
      MAC.ab ch=c row=5 col=g slot=g acc=0
  }
  PREA ch=c
}
"""


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_asm_prints_canonical(tmp_path):
    f = tmp_path / "m.pim"
    f.write_text(MESSY)
    r = invoke("asm", str(f))
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1] == "loop c 2 { # two channels"
    assert "  ACT.ab ch=c row=5" in r.output
    out = tmp_path / "canon.pim"
    assert invoke("asm", str(f), "-o", str(out)).exit_code == 0
    assert out.read_text() == r.output
    assert invoke("asm", str(out)).output == r.output


def test_asm_run_json_and_trace_check(tmp_path):
    hw = load_hw("aim-gddr6")
    f = tmp_path / "g.pim"
    f.write_text(format_program(gemv_program(hw, plan_matrix(hw, 256, 1024, channels=[0, 1]))))
    trace = tmp_path / "trace.pim"
    r = invoke("asm", str(f), "--run", "--json", "--trace", str(trace))
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    run = data["run"]
    assert data["hw"] == "aim-gddr6" and run["cycles"] > 0
    assert run["bytes_internal"] == 256 * 1024 * 2 + 0 * 1
    assert set(run["energy_pj"]) == {"activate", "internal_read", "external_io", "mac",
                                     "pu_ops", "refresh"}
    perf = tmp_path / "t.json"
    assert invoke("asm", str(f), "--perfetto", str(perf)).exit_code == 0
    events = json.loads(perf.read_text())["traceEvents"]
    assert {e["name"] for e in events} >= {"MAC.ab", "WRGB", "ACT.ab", "RDMAC", "SYNC"}
    r = invoke("asm", str(trace), "--check", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["check"]["stamps"] == "listing"
    r = invoke("asm", str(f), "--run", "--check")
    assert r.exit_code == 0 and "cycles" in r.output and "check passed" in r.output


def test_asm_check_unstamped_state_violation(tmp_path):
    f = tmp_path / "s.pim"
    f.write_text("ACT ch=0 bank=1 row=2\nPRE ch=0 bank=1\nRD ch=0 bank=1 row=2 col=0 dst=0\n")
    r = invoke("asm", str(f), "--hw", "hbm-pim", "--check")
    assert r.exit_code == 1
    assert "speccc: error: s.pim:3: RD needs row 2 open in bank 1 of channel 0, which is closed" \
        in r.output


def test_asm_bad_input(tmp_path):
    cases = {
        "syn.pim": ("ACT ch=0 bank=1 row=2 )\n", "syn.pim:1:23: syntax error"),
        "unk.pim": ("NOP ch=0\n", "unk.pim:1:1: unknown command NOP"),
        "rng.pim": (".hw aim-gddr6\nloop i 2 {\n    ACT ch=0 bank=16+i row=0\n}\n",
                    "rng.pim:3:5: bank 17 (from bank=16+i) out of range (preset aim-gddr6 has "
                    "16 banks per channel)"),
        "nohw.pim": ("SYNC\n", "no hardware preset"),
    }
    for name, (text, msg) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        r = invoke("asm", str(f), "--run")
        assert r.exit_code == 2, (name, r.output)
        assert msg in r.output, (name, r.output)
        assert "Traceback" not in r.output
    r = invoke("asm", str(tmp_path / "missing.pim"))
    assert r.exit_code == 2
    r = invoke("asm", str(tmp_path / "nohw.pim"), "--hw", "nope")
    assert r.exit_code == 2 and "unknown hardware preset" in r.output
