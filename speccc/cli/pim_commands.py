"""`speccc hw list|show` and `speccc asm`: hardware presets and PIM listings."""
from __future__ import annotations

import time
from pathlib import Path

import click

from speccc.cli.main import console, main, out_file
from speccc.errors import SpecccError
from speccc.fileio import write_text_atomic
from speccc.textio import dumps_json


def _echo_json(obj) -> None:
    click.echo(dumps_json(obj, indent=2, sort_keys=True))


# ------------------------------------------------------------------- hw -------
@main.group(short_help="Hardware presets: list, show derived figures.")
def hw() -> None:
    """Hardware descriptions (TOML presets or files)."""


@hw.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def hw_list(as_json: bool) -> None:
    """List the shipped presets with their headline figures.

    Device presets (NPU + PIM, for compile and run) first, then systems (GPUs, PIM
    stacks: speccc baseline). --json lists the device presets."""
    from speccc.hw import load_hw, preset_names
    from speccc.hw.config import system_names
    rows = []
    for name in preset_names():
        cfg = load_hw(name)
        d = cfg.derived()
        rows.append({"name": name, "kind": cfg.pim.kind, "description": cfg.description,
                     "channels": cfg.pim.channels, "capacity_gib": d["capacity_bytes"] / 2**30,
                     "peak_internal_gbs": d["peak_internal_gbs"],
                     "peak_external_gbs": d["peak_external_gbs"]})
    systems = [_system_row(name) for name in system_names()]
    if as_json:
        return _echo_json(rows)   # the device presets (what compile and run take)
    from rich.table import Table   # rich is imported by the commands that print tables
    t = Table("preset", "kind", "channels", "capacity", "internal", "external")
    for r in rows:
        t.add_row(r["name"], r["kind"], str(r["channels"]), f"{r['capacity_gib']:.0f} GiB",
                  f"{r['peak_internal_gbs']:.0f} GB/s", f"{r['peak_external_gbs']:.0f} GB/s")
    con = console()
    con.print(t)
    for r in rows:
        con.print(f"  {r['name']}: {r['description']}")
    st = Table("system", "xPUs", "PIM devices", "xPU memory", "PIM capacity")
    for s in systems:
        st.add_row(s["name"], f"{s['xpus']} {s['xpu']}", s["pim"],
                   f"{s['xpu_capacity_gib']:.0f} GiB" if s["xpu_capacity_gib"] else "-",
                   f"{s['pim_capacity_gib']:.0f} GiB" if s["pim_capacity_gib"] else "-")
    con.print(st)
    for s in systems:
        con.print(f"  {s['name']}: {s['description']}")


def _system_row(name: str) -> dict:
    """A system preset's headline: its xPUs, PIM devices and memories."""
    from speccc.hw import load_hw
    cfg = load_hw(name, system=True)
    d = cfg.derived()
    sy = cfg.system
    return {"name": name, "description": cfg.description, "xpu": sy.xpu, "xpus": sy.xpus,
            "pim": f"{sy.pim_devices} x {sy.pim}" if sy.has_pim else "none",
            "xpu_capacity_gib": d.get("gpu_capacity_bytes", 0) / 2**30,
            "pim_capacity_gib": d.get("capacity_bytes", 0) / 2**30}


@hw.command("show")
@click.argument("preset")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def hw_show(preset: str, as_json: bool) -> None:
    """Show every field of PRESET (a device or system preset name, or a .toml path) and
    derived figures."""
    from speccc.hw import load_hw
    cfg = load_hw(preset, system=True)
    data = {**cfg.to_dict(), "derived": cfg.derived()}
    if as_json:
        return _echo_json(data)
    from rich.text import Text
    con = console()
    con.print(Text.assemble((cfg.label, "bold"), f": {cfg.description}"))
    system = dict(data["system"])
    links = {k: system.pop(k) for k in ("xpu_link", "pim_link")}
    if cfg.gpu is not None or cfg.system.pim_devices != 1:   # a system file
        _table(con, "[system]", system)
        for k, v in links.items():
            if v:
                _table(con, f"[system.{k}]", v)
    for section in ("gpu", "npu", "link", "energy"):
        if data[section]:
            _table(con, f"[{section}]", data[section])
    if cfg.pim is None:
        _table(con, "derived", data["derived"])
        return
    pim = dict(data["pim"])
    pu, timing, groups = pim.pop("pu"), pim.pop("timing"), pim.pop("groups")
    _table(con, "[pim]", pim)
    _table(con, "[pim.pu]", pu)
    for g in groups:       # channel groups: their channels and the PU keys they change
        own = {k: v for k, v in g["pu"].items() if v != pu[k]}
        _table(con, f"[[pim.groups]] {g['name']}",
               {"channels": f"{g['lo']}..{g['hi'] - 1} ({g['hi'] - g['lo']})", **own})
    _table(con, "[pim.timing]", timing)
    _table(con, "derived", data["derived"])


def _table(con, title: str, fields: dict) -> None:
    from rich.table import Table
    t = Table(title=title, show_header=False, title_justify="left")  # markup is off
    for k, v in fields.items():
        t.add_row(k, f"{v:,.4g}" if isinstance(v, float) else str(v))
    con.print(t)


# ------------------------------------------------------------------ asm -------
def _write_all(writes: dict[str, str]) -> None:
    for path, text in writes.items():
        write_text_atomic(path, text)


@main.command(short_help="Parse, print, time (--run) or check a PIM listing.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--hw", "hw_name", help="Preset or .toml (default: the listing's `.hw` line).")
@click.option("--run", is_flag=True, help="Time the listing (cycles, bandwidth, energy).")
@click.option("--check", is_flag=True, help="Verify every timing/state constraint (exit 1 on a violation).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-refresh", is_flag=True, help="Run without DRAM refresh.")
@click.option("--trace", "trace_out", callback=out_file,
              help="Also run, and write the issued trace as a cycle-stamped listing.")
@click.option("--perfetto", "perfetto_out", callback=out_file,
              help="Also run, and write the issued trace as Perfetto/Chrome trace JSON.")
@click.option("--max-commands", type=click.IntRange(1), default=None, metavar="N",
              help="Refuse to --run a listing that expands to more commands and loop "
                   "iterations than this (default 50,000,000; the estimate is in the error).")
@click.option("-o", "--output", callback=out_file,
              help="Write the canonical listing here instead of stdout.")
def asm(file, hw_name, run, check, as_json, no_refresh, trace_out, perfetto_out,
        max_commands, output) -> None:
    """Parse a PIM listing and print it canonically; --run times it, --check verifies it.

    \b
    speccc asm gemv.pim --hw aim-gddr6            # canonical listing
    speccc asm gemv.pim --run --json              # cycles, bytes, energy
    speccc asm trace.pim --check                  # stamped trace: verify the stamps
    """
    from speccc.hw import load_hw
    from speccc.targets.pim.listing import check_ranges, format_program, parse
    from speccc.textio import read_text
    text = read_text(file)
    prog = parse(text, name=Path(file).name)
    from speccc.hw import preset_names
    if not hw_name and prog.hw and prog.hw not in preset_names():
        # a listing names a shipped preset; it must not open whatever path it says
        raise SpecccError(f"`.hw {prog.hw}`: a listing names a preset "
                          f"({', '.join(preset_names())}); pass a TOML file with --hw",
                          location=file)
    name = hw_name or prog.hw
    cfg = load_hw(name) if name else None
    if cfg is not None:
        check_ranges(prog, cfg)
    canonical = format_program(prog)
    run = run or bool(trace_out or perfetto_out)
    writes: dict[str, str] = {output: canonical} if output else {}
    if not (run or check):
        _write_all(writes)
        if as_json:
            return _echo_json({"file": file, "hw": name, "listing": canonical})
        if not output:
            click.echo(canonical, nl=False)
        return
    if cfg is None:
        raise SpecccError(f"{file}: no hardware preset: pass --hw or start the listing with `.hw NAME`")
    report: dict = {"file": file, "hw": cfg.label}
    if run:
        from speccc.targets.pim.emulator import format_trace, perfetto_trace, time_program
        from speccc.targets.pim.listing import MAX_COMMANDS
        t0 = time.perf_counter()
        res = time_program(prog, cfg, refresh=not no_refresh,
                           record=bool(trace_out or perfetto_out),
                           max_commands=max_commands or MAX_COMMANDS)
        report["run"] = {**res.to_dict(), "wall_s": round(time.perf_counter() - t0, 4)}
        if trace_out:
            writes[trace_out] = format_trace(res.trace, cfg.name)
        if perfetto_out:
            writes[perfetto_out] = dumps_json(perfetto_trace(res.trace, cfg))
    if check:
        from speccc.targets.pim.checker import check_program
        rep = check_program(prog, cfg, refresh=not no_refresh)
        report["check"] = {"ok": True, "commands": rep.commands, "last_issue": rep.last_issue,
                           "stamps": "listing" if rep.stamped else "emulator"}
    _write_all(writes)  # only now: a failed --run or --check leaves -o/--trace untouched
    if as_json:
        return _echo_json(report)
    if run:
        r = report["run"]
        from rich.table import Table
        con = console()
        t = Table(title=f"{file} on {cfg.label}", show_header=False, title_justify="left")
        t.add_row("cycles", f"{r['cycles']:,}")
        t.add_row("time", f"{r['ns'] / 1000:,.3f} us")
        t.add_row("commands", f"{r['commands']:,} ({r['refreshes']:,} refreshes)")
        t.add_row("bytes inside / outside", f"{r['bytes_internal']:,} / {r['bytes_external']:,}")
        util = r["channel_utilization"]
        used = [u for u in util if u > 0] or [0.0]
        t.add_row("channel utilization", f"mean {sum(used) / len(used):.3f} over {len(used)} channels")
        t.add_row("energy", f"{r['energy_total_pj'] / 1e6:,.3f} uJ")
        for k, v in r["energy_pj"].items():
            t.add_row(f"  {k}", f"{v / 1e6:,.3f} uJ")
        t.add_row("wall", f"{r['wall_s']:.3f} s")
        con.print(t)
    if check:
        c = report["check"]
        click.echo(f"check passed: {c['commands']:,} commands, stamps from the {c['stamps']}")
