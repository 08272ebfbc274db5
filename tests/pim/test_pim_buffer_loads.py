"""Input-vector loads (WRGB) overlap the MACs of the tile before them.

The rule (ISA.md, "Buffer loads and MACs"): a MAC latches its buffer operand when it
issues, so the WRGB that refills a slot with the next tile may issue right after the last
MAC reading that slot; codegen (gemv._stream) places each next-tile WRGB there, for every
buffered token, and the in-order channel issues it while the visit's remaining MACs
stream. In "tiles" order every pass re-reads the tile, so that refill waits for the last
pass, unless the PUs buffer two vectors per token: then tiles alternate buffer halves and
the refill spreads over all passes (gemv.double_buffered). What is never overlapped is
each token group's first tile (its prologue). These tests show all three on the timing
model and check the double-buffered listings compute exactly."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from speccc.hw import load_hw, preset_names
from speccc.targets.pim.emulator import PimEmulator, time_program
from speccc.targets.pim.gemv import double_buffered, gemv_tokens
from speccc.targets.pim.layout import gemv_input, gemv_output, layout_matrix, plan_matrix
from speccc.targets.pim.listing import Program, cmd, format_program, keep_commands

MULTI = [n for n in preset_names() if load_hw(n).pim.token_slots > 1]




def program(hw, pl, T):
    stream = (pl.Kp + pl.tile_elems) // pl.lanes
    return Program(tuple(gemv_tokens(hw, pl, T, stream=stream)) + (cmd("SYNC"),), hw.name)


def times(hw, prog) -> tuple[int, int, int]:
    """Cycles (refresh off, so the three runs compare) of the listing, of its MACs without
    the loads, and of its loads alone."""
    def t(body):
        return time_program(dataclasses.replace(prog, body=body), hw, refresh=False).cycles
    return (t(prog.body), t(keep_commands(prog.body, lambda c: c.op != "WRGB")),
            t(keep_commands(prog.body, lambda c: c.op == "WRGB")))


@pytest.mark.parametrize("name", MULTI)
def test_next_tile_loads_overlap_the_current_tiles_macs(name):
    """A T-token GEMV whose input spans several tiles ("passes" order, one pass: p·V over
    4096 keys): the listing takes less than its MAC stream plus its loads run alone (at
    least 40% of the smaller one hidden; benchmarks/bench_pim_loads.py: 0.53-0.89), and no less than either. In
    the trace each refill WRGB issues between MACs; only the last visit's (the tile-0
    reload every iteration carries, gemv.py) may trail the last MAC."""
    hw = load_hw(name)
    pl = plan_matrix(hw, 128, 4096)
    assert pl.tiles >= 4 and pl.order == "passes" and pl.passes == 1
    for T in (2, hw.pim.token_slots):
        prog = program(hw, pl, T)
        t_all, t_mac, t_load = times(hw, prog)
        assert max(t_mac, t_load) <= t_all <= t_mac + t_load - 0.4 * min(t_mac, t_load), \
            (T, t_all, t_mac, t_load)
        trace = [e for e in time_program(prog, hw, record=True).trace if e.args.get("ch") == 0]
        first_mac = next(i for i, e in enumerate(trace) if e.op == "MACN.ab")
        refills = [e.cycle for e in trace[first_mac:] if e.op == "WRGB"]
        last_mac = max(e.cycle for e in trace if e.op == "MACN.ab")
        tile_loads = T * pl.tile_slots * hw.pim.pseudo_channels     # one channel's
        assert len(refills) == pl.tiles * tile_loads
        assert sum(1 for c in refills if c > last_mac) <= tile_loads


@pytest.mark.parametrize("name", MULTI)
def test_tiles_order_refills_only_during_the_last_pass(name):
    """"tiles" order (a large GEMV: every pass re-reads the tile's slots) can refill a slot
    only after the tile's last pass has read it, so tile t+1's loads all issue during the
    last of the Q visits of tile t and the other Q-1 visits' bus time goes unused: less
    overlap than one pass (bench_pim_loads.py: 0.19 of the smaller part hidden at full T,
    where no second buffer vector per token is left to spread them)."""
    hw = load_hw(name)
    pl = plan_matrix(hw, 4096, 4096)
    assert pl.order == "tiles" and pl.passes >= 4
    T = hw.pim.token_slots
    prog = program(hw, pl, T)
    t_all, t_mac, t_load = times(hw, prog)
    assert max(t_mac, t_load) <= t_all < t_mac + t_load
    trace = [e for e in time_program(prog, hw, record=True, refresh=False).trace
             if e.args.get("ch") == 0 and e.args.get("pc", 0) == 0]
    visits = [e.cycle for e in trace if e.op == "ACT.ab"]       # one per (tile, pass)
    first_mac = next(e.cycle for e in trace if e.op == "MACN.ab")
    for e in trace:
        if e.op == "WRGB" and e.cycle > first_mac:
            k = sum(1 for v in visits if v <= e.cycle) - 1      # the visit it issues in
            assert k % pl.passes == pl.passes - 1, (e, k)


@pytest.mark.parametrize("name", MULTI)
def test_a_groups_first_tile_is_loaded_before_its_macs(name):
    """Not overlapped: a token group's prologue (its T vectors' first tile) precedes the
    group's first MAC, at least T·Gt bursts on one pseudo-channel's bus, and the next
    group's prologue follows the previous group's read-out; so two groups cost at most
    twice one group plus one such tile."""
    hw = load_hw(name)
    p = hw.pim
    pl = plan_matrix(hw, 128, 4096)
    T, stream = p.token_slots, (pl.Kp + pl.tile_elems) // pl.lanes
    trace = [e for e in time_program(program(hw, pl, 2 * T), hw, record=True,
                                     refresh=False).trace if e.args.get("ch") == 0]
    macs = [e.cycle for e in trace if e.op == "MACN.ab"]
    assert macs[0] >= (T * pl.tile_slots - 1) * p.timing.tBL
    group1 = T * pl.outputs                     # group 1's outputs start here
    last_read0 = max(e.cycle for e in trace if e.op == "RDMAC" and e.args["dst"] < group1)
    prologue1 = [e.cycle for e in trace if e.op == "WRGB" and e.args["src"] >= T * stream
                 and e.args["src"] % stream < pl.tile_slots]
    first_mac1 = min(e.cycle for e in trace if e.op == "MACN.ab" and e.cycle > last_read0)
    assert prologue1 and last_read0 < min(prologue1) and max(prologue1) < first_mac1
    t_group = time_program(program(hw, pl, T), hw, refresh=False).cycles
    t_two = time_program(program(hw, pl, 2 * T), hw, refresh=False).cycles
    assert 1.9 * t_group <= t_two <= 2 * t_group + T * pl.tile_slots * p.timing.tBL


def single_buffer(hw, T):
    """The same PUs with exactly T buffer vectors (no room for a second half)."""
    pu = dataclasses.replace(hw.pim.pu, vector_slots=T)
    return dataclasses.replace(hw, pim=dataclasses.replace(hw.pim, pu=pu))


# (preset, M, K, channels, T): small "tiles"-order GEMVs with Q >= 2 passes, NT >= 2 tiles
# (odd NT on hbm3-pim-x8: the unpaired last tile) and a bus-bound single-buffered refill
DOUBLE = [("aim-gddr6-x4", 100, 1100, 2, 2), ("hbm3-pim-x8", 200, 1100, 1, 3),
          ("hbm3-pim-x8", 200, 1100, 1, 4)]


@pytest.mark.parametrize("name,M,K,nch,T", DOUBLE)
def test_double_buffered_gemv_equals_numpy_per_token(name, M, K, nch, T):
    """Tiles alternate buffer halves (slots of half 1 start at T*gb_slots) and each tile's
    refill rides in the passes of the one before: every token's y equals numpy (fp32) and,
    in device precision, the single-buffered listing bit for bit."""
    hw = load_hw(name)
    rng = np.random.default_rng(T)
    W = rng.standard_normal((M, K)).astype(np.float32)
    X = rng.standard_normal((T, K)).astype(np.float32)
    out = {}
    for label, h in (("double", hw), ("single", single_buffer(hw, T))):
        pl = layout_matrix(h, W, channels=list(range(nch)), order="tiles")
        assert pl.passes >= 2 and pl.tiles >= 2
        assert double_buffered(h, pl, T) == (label == "double")
        prog = program(h, pl, T)
        assert ("buffer halves" in format_program(prog)) == (label == "double")
        for mode in ("fp32", "device"):
            emu = PimEmulator(h, mode=mode)
            emu.load_image(pl.image)
            emu.set_input(np.concatenate([gemv_input(pl, x) for x in X]))
            emu.run(prog)
            out[label, mode] = np.stack([gemv_output(pl, emu.outputs, r * pl.outputs)
                                         for r in range(T)])
    np.testing.assert_allclose(out["double", "fp32"], X @ W.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out["double", "device"], out["single", "device"])


@pytest.mark.parametrize("name,T", [("aim-gddr6-x4", 2), ("hbm3-pim-x8", 3), ("hbm3-pim-x8", 4)])
def test_double_buffering_hides_the_refill(name, T):
    """4096x4096 ("tiles", Q >= 4 passes): spreading each refill over the tile's passes
    is faster than refilling in the last pass (bench_pim_loads / measured 3-7%), and
    never slower where the single-buffered refill already hides (T=2 on hbm3-pim-x8)."""
    hw = load_hw(name)
    pl = plan_matrix(hw, 4096, 4096)
    assert double_buffered(hw, pl, T)
    t_double, t_mac, _ = times(hw, program(hw, pl, T))
    t_single = times(single_buffer(hw, T), program(single_buffer(hw, T), pl, T))[0]
    assert t_mac <= t_double < 0.98 * t_single, (t_double, t_single, t_mac)
    x8 = load_hw("hbm3-pim-x8")
    assert not double_buffered(x8, plan_matrix(x8, 4096, 4096), 2)   # 2 x tBL <= tCCD_AB
