"""Helpers shared by CLI tests (imported as a plain module: tests/ is on sys.path)."""
from __future__ import annotations

from click.testing import CliRunner

from speccc.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_error(result, *needles):
    """Bad input: exit 2, one line `speccc: error: ...` containing every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("speccc: error: "), result.stderr
    for n in needles:
        assert n in err[0], (n, err[0])
    assert "Traceback" not in result.output
