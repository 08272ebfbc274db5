"""numba, the optional `[fast]` extra, imported only when a compiled path is first asked
for: importing it costs ~0.5 s, which a command that never runs a big listing should
not pay. flat.py (timing) and level_jit.py (accumulator steps) compile through it."""
from __future__ import annotations


def load_numba():
    """The numba module, or None when it is not installed (the pure-Python paths run)."""
    try:
        import numba
    except ImportError:
        return None
    return numba
