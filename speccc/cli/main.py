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
    "speccc.cli.pim_commands",
    "speccc.cli.run_commands",
    "speccc.cli.gguf_commands",
]


class SpecccGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (SpecccError, CheckFailed) as err:
            if ctx.params.get("debug"):
                raise
            click.echo(f"speccc: error: {err}", err=True)
            sys.exit(err.exit_code)
        except OSError as err:
            if ctx.params.get("debug"):
                raise
            click.echo(f"speccc: error: {err.filename or ''}: {err.strerror or err}", err=True)
            sys.exit(2)


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
