"""Progress bars for commands that can run longer than a few seconds (run, compile, exec,
dse): rich bars on stderr, never on stdout (so `--json` output stays one JSON document).

    with progress_bars(flag) as bars:          # flag: --progress/--no-progress (None: auto)
        task = bars.add("compile passes", total=12)
        bars.update(task, advance=1, description="fuse")

Shown when stderr is a terminal, or with --progress (then drawn even into a pipe or a
file, as asked); --no-progress never. Transient: the bars vanish when the work is done,
so the command's own output reads as before. rich is imported only when bars are shown
(tests/test_startup.py keeps `speccc --help` free of it).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import click

HELP = ("Progress bars on stderr (default: only when stderr is a terminal; never on "
        "stdout).")


def progress_option(fn):
    return click.option("--progress/--no-progress", "progress", default=None, help=HELP)(fn)


def wanted(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


class NoBars:
    """What `progress_bars` yields when bars are off: every call does nothing."""

    def add(self, description: str, total: float | None = None) -> int:
        return 0

    def update(self, task: int, **fields) -> None:
        pass

    def callback(self, description: str, total: float | None = None):
        """fn(done, total=None, description=None) updating a new task (here: nothing)."""
        return lambda *a, **k: None


class Bars(NoBars):
    def __init__(self, progress):
        self.progress = progress

    def add(self, description: str, total: float | None = None) -> int:
        return self.progress.add_task(description, total=total)

    def update(self, task: int, **fields) -> None:
        self.progress.update(task, **{k: v for k, v in fields.items() if v is not None})

    def callback(self, description: str, total: float | None = None):
        task = self.add(description, total)

        def tick(done, total=None, description=None):
            self.update(task, completed=done, total=total, description=description)
        return tick


@contextmanager
def progress_bars(flag: bool | None):
    if not wanted(flag):
        yield NoBars()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    con = Console(stderr=True, force_terminal=True if flag else None)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=con, transient=True) as progress:
        yield Bars(progress)
