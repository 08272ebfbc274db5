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


def _examples(cmd) -> list[str]:
    """The `speccc ...` lines of a command's help (continuation lines joined, comments cut;
    a line eliding its options with `...` is left out)."""
    out, buf = [], ""
    for raw in (cmd.help or "").splitlines():
        line = raw.strip()
        if buf:
            line = buf + " " + line
            buf = ""
        elif not line.startswith("speccc "):
            continue
        line = re.sub(r"\s+#.*$", "", line)
        if line.endswith("\\"):
            buf = line[:-1].strip()
            continue
        if " ... " not in f"{line} ":
            out.append(line)
    return out


EXAMPLES = [(" ".join(p) or "speccc", ex) for p, c in COMMANDS for ex in _examples(c)]


def test_help_has_examples():
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("where,example", EXAMPLES, ids=[f"{w}:{i}" for i, (w, _) in
                                                         enumerate(EXAMPLES)])
def test_help_examples_parse(where, example, tmp_path, monkeypatch):
    """Every example a --help shows names a command and options it has, with values its
    option types accept (parsed, not run: the README tour runs commands)."""
    import shlex
    monkeypatch.chdir(tmp_path)
    args = shlex.split(example)[1:]
    group, ctx = main, main.make_context("speccc", [], resilient_parsing=True)
    while args and isinstance(group, click.Group):
        cmd = group.get_command(ctx, args[0])
        assert cmd is not None, f"{where}: unknown command in {example!r}"
        name, args = args[0], args[1:]
        if isinstance(cmd, click.Group):
            group = cmd
            continue
        cmd.make_context(name, list(args), parent=ctx)
        break
