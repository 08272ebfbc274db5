"""speccc command line. Only this package knows the terminal: printing, exit codes."""
from speccc.cli.main import main

__all__ = ["main"]
