"""A schedule is a program: print it, edit it, parse it back and the runtime runs the edit.

Each test edits the text `speculate` printed and checks the behaviour moved the way the
edit says (and that it still decodes losslessly); ill-formed edits are located errors.
"""
from __future__ import annotations

import pytest

from speccc.errors import SpecccError
from speccc.ir.parser import parse_module
from speccc.ir.printer import print_module
from speccc.passmanager import PassManager
from speccc.runtime.runner import RunConfig, simulate

PROMPT = [3, 4, 5]


def printed(m, spec: str) -> str:
    PassManager.parse(f"speculate{{{spec}}}").run(m)
    return print_module(m)


def run_text(m, text: str, **cfg):
    """Parse an edited module text (weights from `m`) and run its schedule."""
    m2 = parse_module(text, "edited.ir")
    m2.stores.update(m.stores)
    cfg = {"prompt": PROMPT, "max_new_tokens": 16, "cost_model": "roofline", **cfg}
    return simulate(m2, RunConfig(**cfg))[0]


def edit(text: str, *pairs) -> str:
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_gamma_is_the_draft_ops_tokens(pairs):
    """Identical models accept every draft: the acceptance length is tokens + 1."""
    m = pairs("llama-tiny", 0, 0.0)
    text = printed(m, "schedule=serial,gamma=2")
    assert run_text(m, text)["mean_acceptance_length"] == 3.0
    rep = run_text(m, edit(text, ("tokens = 2}", "tokens = 5}"),
                           ("positions = 3}", "positions = 6}")))
    assert rep["gamma"] == 5 and rep["mean_acceptance_length"] == 6.0


def _overlapped(text: str, before_verify: bool) -> str:
    """Serial plus a speculative draft of the next block and its cancel: overlap's ops."""
    pre = ('  %pre = spec.draft(%1) {model = "draft", on = ["pim.draft"], speculative = true, '
           'tokens = 5} : tensor<i1>\n')
    where = "  %2 = spec.verify(%1)" if before_verify else "  %3 = spec.kv(%2)"
    return edit(text, (where, pre + where),
                ("  %7 = spec.step(%5, %6)", '  %c = spec.cancel(%4, %pre) {what = "the '
                 'next draft when the verify disagrees"} : tensor<i1>\n  %7 = spec.step(%5, %6, %c)'))


def test_adding_a_speculative_draft_turns_serial_into_overlap(pairs):
    m = pairs("llama-tiny", 1, 0.3)   # rejections happen: some speculative drafts die
    none = run_text(m, printed(m, "schedule=none"))
    serial = run_text(m, printed(m, "schedule=serial,gamma=4,draft_channels=3"))
    overlap = run_text(m, printed(m, "schedule=overlap,gamma=4,draft_channels=3"))
    edited = run_text(m, _overlapped(printed(m, "schedule=serial,gamma=4,draft_channels=3"),
                                     before_verify=False))
    assert edited["tokens"] == overlap["tokens"] == serial["tokens"] == none["tokens"]
    assert edited["runs"].get("predraft", 0) > 0 and edited["cancelled_runs"]
    assert edited["drafted_tokens"]["rejected"] > 0
    for key in ("time_ms", "energy_mj", "runs", "cancelled_runs", "drafted_tokens"):
        assert edited[key] == overlap[key], key
    assert edited["time_ms"] != serial["time_ms"]


def test_moving_the_next_draft_before_the_verify(pairs):
    """The speculative draft launched before the verify takes the host link first. On a
    pair that rejects nearly every draft, every guessed block is discarded, so the only
    effect is the delayed verify (when guesses survive, launching them early can pay)."""
    m = pairs("llama-tiny", 1, 0.6)
    text = printed(m, "schedule=serial,gamma=4,draft_channels=3")
    after = run_text(m, _overlapped(text, before_verify=False))
    before = run_text(m, _overlapped(text, before_verify=True))
    assert before["tokens"] == after["tokens"]
    assert before["cancelled_runs"]["predraft"] == before["runs"]["predraft"]
    assert before["time_ms"] > after["time_ms"]


@pytest.mark.parametrize("old,new,needle", [
    ("spec.verify(%1)", "spec.verify(%0)", "a verify needs a spec.draft before it"),
    ('on = ["pim"], positions = 3', 'on = ["pim.nope"], positions = 3',
     "unknown resource 'pim.nope' (the graph declares npu, pim)"),
    ("positions = 3}", "positions = 4}", "positions = 4 but the draft before it has tokens = 2"),
    ("spec.accept(%3)", "spec.accept(%0)", "needs a spec.verify before it"),
    ('model = "draft", on = ["pim"], tokens', 'model = "drafty", on = ["pim"], tokens',
     "unknown model 'drafty'"),
])
def test_ill_formed_programs_are_located_errors(pairs, old, new, needle):
    m = pairs()
    text = edit(printed(m, "schedule=serial,gamma=2"), (old, new))
    with pytest.raises(SpecccError) as e:
        run_text(m, text)
    msg = str(e.value)
    assert needle in msg and "edited.ir:" in msg, msg


def test_batched_burst_runs_from_text(pairs):
    """A printed batched pipeinfer program runs from its text like the pass's own, and
    its burst's `rounds` is an attribute one can edit (a bad value is a located error)."""
    m = pairs("llama-tiny", 0, 0.1, weights=False)
    text = printed(m, "schedule=pipeinfer,gamma=2,batch=2,rounds=batch")
    assert 'rounds = "batch"' in text
    direct = simulate(m, RunConfig(max_new_tokens=16, cost_model="roofline",
                                   acceptance=0.5))[0]
    assert run_text(m, text, acceptance=0.5, prompt=None) == direct
    per_request = run_text(m, edit(text, ('rounds = "batch"', 'rounds = "request"')),
                           acceptance=0.5, prompt=None)
    assert per_request["generated_tokens"] == 32 and per_request != direct
    with pytest.raises(SpecccError) as e:
        run_text(m, edit(text, ('rounds = "batch"', 'rounds = "all"')), acceptance=0.5,
                 prompt=None)
    assert "rounds must be request or batch" in str(e.value)
    assert "edited.ir:" in str(e.value)
