"""Host outputs: {dst: array} as RD / RDMAC leave them, plus, for the vectorised
engine, the same results as one array, so a reader of many results (a GEMV's blocks,
attention's scores) takes them with one index operation instead of stacking a small
array per result.

`HostOut` is a dict (what every reader sees). A vectorised listing adds its RDMAC
results with `add_block`; any other write (the per-command engine's `out[dst] = ...`,
`update`, deleting) drops the dense view, and `clear` starts a new one. `stacked`
answers from the dense view only when exactly one block was added since the last
clear, which then is what the dict holds for those keys.
"""
from __future__ import annotations

import numpy as np


class HostOut(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocks: list | None = [] if not self else None

    def add_block(self, dsts: np.ndarray, values: np.ndarray, rows: np.ndarray,
                  order: np.ndarray) -> None:
        """out[dsts[i]] = values[rows[i]]; `order` sorts dsts."""
        super().update(zip(dsts.tolist(), values[rows]))
        if self.blocks is not None:
            self.blocks.append((dsts[order], values, rows[order]))

    def stacked(self, keys) -> np.ndarray:
        """np.stack([self[k] for k in keys]), KeyError for a missing key."""
        keys = np.asarray(keys, np.int64).reshape(-1)
        if self.blocks is not None and len(self.blocks) == 1 and len(keys):
            dsts, values, rows = self.blocks[0]
            at = np.minimum(np.searchsorted(dsts, keys), len(dsts) - 1)
            if np.array_equal(dsts[at], keys):
                return values[rows[at]]
        return np.stack([self[k] for k in keys.tolist()])

    def _dropped(name):
        def method(self, *args, **kwargs):
            self.blocks = None
            return getattr(dict, name)(self, *args, **kwargs)
        method.__name__ = name
        return method

    __setitem__ = _dropped("__setitem__")
    __delitem__ = _dropped("__delitem__")
    update = _dropped("update")
    pop = _dropped("pop")
    popitem = _dropped("popitem")
    setdefault = _dropped("setdefault")
    __ior__ = _dropped("__ior__")
    del _dropped

    def clear(self) -> None:
        super().clear()
        self.blocks = []


def stack_outputs(host_out, keys) -> np.ndarray:
    """The results at `keys` as one array (HostOut's dense view when it has one)."""
    if isinstance(host_out, HostOut):
        return host_out.stacked(keys)
    return np.stack([host_out[k] for k in np.asarray(keys).reshape(-1).tolist()])
