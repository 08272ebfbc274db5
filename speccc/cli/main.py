"""The `speccc` click group and its error handling.

Every command module registers itself on `main` at import; errors raised below the CLI
are typed (speccc.errors) and turn into one line `speccc: error: ...` and exit code 2
(bad input) or 1 (check failed). `--debug` re-raises to show the traceback.
"""
from __future__ import annotations

import importlib
import sys

import click

from speccc.errors import CheckFailed, SpecccError

# Command modules, imported lazily by name so `speccc --help` stays fast.
COMMAND_MODULES = [
    "speccc.cli.core_commands",
    "speccc.cli.model_commands",
    "speccc.cli.pim_commands",
    "speccc.cli.run_commands",
    "speccc.cli.info_commands",
    "speccc.cli.dse_commands",
    "speccc.cli.baseline_commands",
    "speccc.cli.gguf_commands",
    "speccc.cli.cache_commands",
]


class SpecccGroup(click.Group):
    group_class = type          # subgroups (`speccc hw`) are SpecccGroups too

    def format_commands(self, ctx: click.Context, formatter) -> None:
        """As click's, but a command's summary is never cut to fit one line (`Show
        every field of PRESET (a ...`): its whole first sentence, wrapped."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # the reader went away (`speccc ops | head`): nothing to report. Point stdout
            # at /dev/null so the interpreter's final flush does not fail again.
            import os
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (SpecccError, CheckFailed, OSError, click.UsageError) as err:
            if ctx.params.get("debug"):
                raise
            click.echo(f"speccc: error: {one_line(_message(err))}", err=True)
            sys.exit(err.exit_code if isinstance(err, (SpecccError, CheckFailed)) else 2)


def _message(err: Exception) -> str:
    if isinstance(err, click.UsageError):
        # click's own usage text is several lines; the convention is one
        path = err.ctx.command_path if err.ctx else ""
        hint = f" (see `speccc {path.split(' ', 1)[-1]} --help`)" if " " in path else ""
        return err.format_message() + hint
    if isinstance(err, OSError) and not isinstance(err, SpecccError):
        return f"{err.filename}: {err.strerror or err}" if err.filename else \
            str(err.strerror or err)
    return str(err)


def console(stderr: bool = False):
    """The rich console every command prints through. Markup is off: paths, preset
    names, descriptions and op names are user text, and `[/x].onnx` must print as
    itself (not raise MarkupError) and `[red]x[/red].onnx` not as `x.onnx`."""
    from rich.console import Console
    return Console(stderr=stderr, markup=False, highlight=False)


def one_line(text: str) -> str:
    """Whitespace (newlines included: a name or an upstream message may carry them)
    collapsed, so an error is always exactly one line."""
    return " ".join(str(text).split())


def out_file(ctx, param, value):
    """click callback for `-o FILE`-like options: refuse an output that cannot be written
    safely (empty, a device/FIFO/dir) before any work is done."""
    if value is not None:
        from speccc.fileio import output_file
        output_file(value)
    return value


def out_dir(ctx, param, value):
    if value is not None:
        from speccc.fileio import output_dir
        output_dir(value)
    return value


@click.group(cls=SpecccGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.version_option(package_name="speccc")
def main(debug: bool) -> None:
    """speccc: compile draft/target LLM pairs for speculative decoding on NPU + PIM.

    \b
    Typical session:
      speccc zoo llama-tiny --mode decode -o tiny.onnx    # build a tiny model
      speccc compile tiny.onnx --bind T=1,P=16 -o out     # IR, PIM listings, report.json
      speccc opt out/ir/target.ir -p 'fuse,dce'           # run passes on IR text
      speccc zoo llama-tiny --mode decode --pair pair/    # a draft/target pair
      speccc run --target pair/target.onnx --draft pair/draft.onnx --prompt-ids 1,2 \\
          --max-new-tokens 16 --gamma 4 --schedule serial  # speculative decoding, timed
    """


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real missing dependency inside the module
                raise


_load_commands()
