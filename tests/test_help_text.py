"""Every command's --help is whole and readable (issue 16 item 8): summaries are not cut,
example lines keep their line breaks, every option says what it does."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from speccc.cli import main


def _commands(group=main, path=()):
    """(path, command) for every command and group below `group`."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


COMMANDS = [((), main), *list(_commands())]
IDS = [" ".join(p) or "speccc" for p, _ in COMMANDS]


def _help(path) -> str:
    res = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_every_option_has_help(path, cmd):
    missing = [p.name for p in cmd.params if isinstance(p, click.Option) and not p.hidden
               and not (p.help or "").strip()]
    assert not missing, f"speccc {' '.join(path)}: options without help: {missing}"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_help_text_has_no_lost_line_breaks(path, cmd):
    """The text above Options: (description and examples) has no run of spaces inside a
    line, the mark of a docstring's backslash-newline or indentation rewrapped by click;
    spaces that align a trailing `# comment` are fine."""
    text = _help(path).split("\nOptions:")[0]
    bad = [line for line in text.splitlines()
           if re.search(r"\S {3,}(?!#|\s)", line)]
    assert not bad, bad


@pytest.mark.parametrize("path,cmd", [c for c in COMMANDS if isinstance(c[1], click.Group)],
                         ids=[i for i, c in zip(IDS, COMMANDS) if isinstance(c[1], click.Group)])
def test_group_summaries_are_whole(path, cmd):
    commands = _help(path).split("\nCommands:\n")[1]
    assert "..." not in commands, commands
    ctx = click.Context(cmd)
    for name in cmd.list_commands(ctx):
        sub = cmd.get_command(ctx, name)
        summary = sub.short_help or sub.help.split("\n\n")[0]
        flat = " ".join(commands.split())
        assert " ".join(summary.split()).rstrip(".") in flat, (name, summary)
