"""Timing validation, Ramulator-style, plus a generated probe for every table rule.

Probe for a rule (prev P, next F, level L, latency d): a stamped program where P and F
share a node of level L, everything else far enough away; F exactly d after P must pass
the checker, F at d-1 must be flagged naming the rule, and the emulator, left to
schedule the same program, must put F exactly d after P. A pair whose at-limit
placement breaks some other rule (e.g. tFAW on a preset with tFAW <= 4*tRRD_S) is
`dominated` and reported, not tested; every rule must be tested on some preset.
"""
import pytest

from speccc.errors import CheckFailed
from speccc.hw import load_hw
from speccc.targets.pim.checker import Entry, check_trace
from speccc.targets.pim.emulator import time_program
from speccc.targets.pim.isa import OPS
from speccc.targets.pim.listing import parse
from speccc.targets.pim.timing import compile_rules, standard_for

PRESETS = ["hbm-pim", "aim-gddr6", "hbm3-pim"]
KIND_OP = {s.kind: s.name for s in OPS.values() if not s.tokens}   # MACN.ab: MACab too


def run(text, hw, **kw):
    return time_program(parse(text, "t.pim"), hw, record=True, **kw)


# ------------------------------------------------------ Ramulator-style -------
@pytest.mark.parametrize("name", PRESETS)
def test_unloaded_read_latency_other_row_open(name):
    hw = load_hw(name)
    t = hw.pim.timing
    r = run("ACT ch=0 bank=0 row=1\n@2000 PRE ch=0 bank=0\nACT ch=0 bank=0 row=2\n"
            "RD ch=0 bank=0 row=2 col=0 dst=0\n", hw)
    pre, rd = r.trace[1].cycle, r.trace[3].cycle
    latency_ns = (rd + t.CL - pre) * t.tCK_ns
    assert latency_ns == pytest.approx((t.tRP + t.tRCD + t.CL) * t.tCK_ns)


def _stream_bytes_per_cycle(hw, refresh):
    """Reads streaming from one open row for ~50 refresh intervals."""
    t, c = hw.pim.timing, hw.pim.columns
    k = 50 * t.tREFI // (c * t.tCCD_L)
    text = (f"ACT ch=0 bank=0 row=0\nloop k {k} {{\n  loop c {c} {{\n"
            f"    RD ch=0 bank=0 row=0 col=c dst=0\n  }}\n}}\n")
    r = time_program(parse(text), hw, refresh=refresh)
    return r.bytes_external / r.cycles, r


@pytest.mark.parametrize("name", PRESETS)
def test_streaming_bandwidth_under_refresh(name):
    """peak * (1 - tRFC/tREFI) within 1%: the formula ignores the PRE before and the
    ACT + tRCD after each refresh, which is why the emulator lands 0.5-0.8% below it."""
    hw = load_hw(name)
    t = hw.pim.timing
    peak, _ = _stream_bytes_per_cycle(hw, refresh=False)
    bw, res = _stream_bytes_per_cycle(hw, refresh=True)
    assert res.refreshes >= 49
    assert peak == pytest.approx(hw.pim.burst_bytes / t.tCCD_L, rel=1e-3)
    assert bw == pytest.approx(peak * (1 - t.tRFC / t.tREFI), rel=0.01)


@pytest.mark.parametrize("name", PRESETS)
def test_fifth_act_inside_tfaw_is_delayed(name):
    hw = load_hw(name)
    t, per = hw.pim.timing, hw.pim.banks_per_group
    acts = "".join(f"ACT ch=0 bank={per * i % hw.pim.banks_per_pc + i // hw.pim.bank_groups}"
                   f" row=0\n" for i in range(5))
    cyc = [e.cycle for e in run(acts, hw).trace]
    assert cyc[4] - cyc[0] >= t.tFAW
    assert cyc[4] == max(cyc[0] + t.tFAW, cyc[3] + t.tRRD_S)
    if t.tFAW > 4 * t.tRRD_S:
        assert cyc[4] - cyc[3] > t.tRRD_S            # really delayed by the window


# ---------------------------------------------------------- rule probes -------
def _fmt(kind, a):
    op = KIND_OP[kind]
    spec = OPS[op]
    vals = {"ch": 0, "row": 1, "col": 0, "src": 0, "dst": 0, "fn": "relu", **a}
    return op + "".join(f" {k}={vals[k]}" for k in spec.required + spec.optional if k in vals)


def _address(hw, kind, level, role):
    """Operands for `kind` so that prev (role 0) and next (role 1) share a node of
    `level` and, where possible, nothing below it."""
    p = hw.pim
    other_set = 1 if p.pu.banks_per_pu > 1 else 0   # keep clear of P's all-bank set
    bank = 0
    pc = 0
    if role == 1:
        if level == "bankgroup":
            bank = 1
        elif level == "pc" or (level == "channel" and p.pseudo_channels == 1):
            bank = p.banks_per_group + other_set
        elif level == "channel":
            pc, bank = 1, p.banks_per_pc
    a = {"bank": bank, "pc": pc, "sel": (bank % p.banks_per_pc) % p.pu.banks_per_pu,
         "slot": 0, "acc": 0}
    if OPS[KIND_OP[kind]].all_bank or "bank" not in OPS[KIND_OP[kind]].required:
        a.pop("bank")
    return a


def _banks(hw, kind, a):
    spec = OPS[KIND_OP[kind]]
    p = hw.pim
    if "bank" in a:
        return [a["bank"]]
    if not spec.all_bank:
        return []
    base = a.get("pc", 0) * p.banks_per_pc
    if kind in ("PREA", "REF"):
        return list(range(base, base + p.banks_per_pc))
    return list(range(base + a["sel"], base + p.banks_per_pc, p.pu.banks_per_pu))


def _probe_program(hw, rule, pk, fk):
    """Unstamped listing: setup, P (not before cycle 1000), interposed commands, F."""
    pa, fa = _address(hw, pk, rule.level, 0), _address(hw, fk, rule.level, 1)
    p_spec, f_spec = OPS[KIND_OP[pk]], OPS[KIND_OP[fk]]
    pb, fb = _banks(hw, pk, pa), _banks(hw, fk, fa)
    setup, mid = [], []
    if p_spec.state == "open":
        setup += [f"ACT ch=0 bank={b} row=1" for b in pb]
    if f_spec.state == "open":
        need = [b for b in fb if not (p_spec.opens and b in pb) and b not in
                (pb if p_spec.state == "open" else [])]
        setup += [f"ACT ch=0 bank={b} row=1" for b in need]
        if p_spec.closes and set(fb) & set(pb):
            return None                       # P closes what F reads: no such pair
    if f_spec.state in ("closed", "pc_closed"):
        opened = set(pb) if (p_spec.opens or p_spec.state == "open") else set()
        if f_spec.state == "pc_closed":
            clash = opened
        else:
            clash = opened & set(fb)
        if clash and p_spec.state == "closed" and set(fb) <= set(pb) and not p_spec.opens:
            return None
        mid += [f"PRE ch=0 bank={b}" for b in sorted(clash)]
    if p_spec.state == "pc_closed" and setup:
        return None
    if rule.window > 1:      # w-1 more ACTs, one per other bank group; F to P's group
        mid = [f"ACT ch=0 bank={i * hw.pim.banks_per_group} row=1"
               for i in range(1, rule.window)] + mid
        fa = {"bank": 1}
    lines = setup + ["@1000 " + _fmt(pk, pa)] + mid + [_fmt(fk, fa)]
    return "\n".join(lines) + "\n", len(setup) + 1, len(lines)


def _entries(trace):
    return [Entry(e.cycle, e.op, dict(e.args), e.line, e.auto) for e in trace]


def probe(hw, cr, pk, fk):
    built = _probe_program(hw, cr.rule, pk, fk)
    if built is None:
        return "infeasible"
    text, p_line, f_line = built
    try:
        res = time_program(parse(text, "probe.pim"), hw, record=True)
    except Exception as err:                      # state conflict in the scenario
        return f"infeasible: {err}"
    tr = _entries(res.trace)
    p_ent = next(e for e in tr if e.line == p_line)
    f_ent = next(e for e in tr if e.line == f_line)
    limit = p_ent.cycle + cr.latency
    f_ent.cycle = limit
    try:
        check_trace(tr, hw, "probe.pim")
    except CheckFailed as err:
        return f"dominated: {err}"
    emulator_cycle = next(e for e in _entries(res.trace) if e.line == f_line).cycle
    f_ent.cycle = limit - 1
    with pytest.raises(CheckFailed) as err:
        check_trace(tr, hw, "probe.pim")
    msg = str(err.value)
    assert msg.startswith(f"probe.pim:{f_line}: "), msg
    assert cr.rule.name in msg, msg
    assert emulator_cycle == limit, (cr.rule, pk, fk, emulator_cycle, limit)
    return "tested"


def _constraint(rule):
    """A rule without its `why`: standards sharing a constraint share its probe."""
    return (rule.name, rule.level, rule.prev, rule.next, rule.latency, rule.window)


def test_every_rule_has_a_probe_at_and_under_its_limit():
    """Every rule of every preset's standard is probed on some preset that has it (a
    preset's numbers can make a rule dominated there, e.g. tFAW <= 4 x tRRD_S)."""
    tested: dict[tuple, list] = {}
    dominated = []
    for name in PRESETS:
        hw = load_hw(name)
        for cr in compile_rules(hw):
            seen = tested.setdefault(_constraint(cr.rule), [])
            pairs = [(p, f) for p in cr.rule.prev for f in cr.rule.next]
            if cr.rule.level == "channel":          # 15 x 15: a representative sample
                pairs = [("ACT", "RD"), ("MAC", "WRGB"), ("RDMAC", "AF"), ("PREA", "REF")]
            for pk, fk in pairs:
                outcome = probe(hw, cr, pk, fk)
                if outcome == "tested":
                    seen.append((name, pk, fk))
                elif outcome.startswith("dominated"):
                    dominated.append((name, cr.rule.name, pk, fk))
    missing = [f"{c[0]} ({c[1]} {c[2]}->{c[3]})" for c, v in tested.items() if not v]
    assert not missing, f"rules without a probe: {missing}"
    assert len(tested) >= 32
    assert sum(len(v) for v in tested.values()) > 150
