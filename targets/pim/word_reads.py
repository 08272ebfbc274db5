"""Host-side pieces of the vectorised engine's run (vectorised.py): bank-word reads of a
plan gathered (or located, for the compiled path) in one index operation, and rounding
into an existing array."""
from __future__ import annotations

import numpy as np


class WordReads:
    """A selection of a plan's bank-word reads, gathered in one index operation.
    `reuse`: keep the gathered words and return the same array while none of the pool
    rows they come from was written (weights between runs); the caller must only read
    it (the words this listing's WRs supply are refreshed on every call)."""

    def __init__(self, plan, sel: np.ndarray, reuse: bool = False):
        self.plan, self.row, self.col = plan, plan.read_row[sel], plan.read_col[sel]
        src = plan.read_src[sel]
        self.wr_at = np.flatnonzero(src >= 0)
        self.wr_src = src[self.wr_at]
        self.reuse = reuse
        self._index = self._sources = (None, None)
        self._kept = (None, None, None)      # (pool rows, their write counts, words)

    def sources(self, st, hin_at: int) -> np.ndarray:
        """Per selected read, where its word is: a row of the flat pool (>= 0) or, for a
        word a WR of this listing supplies, -1 - (hin_at + host burst) (a row of the
        table that holds the rounded host input from row hin_at on)."""
        rows = self.plan.pool_rows(st)
        have, index = self._sources
        if have is not rows:
            index = rows[self.row] * st.pool.shape[1] + self.col
            index[self.wr_at] = -1 - (hin_at + self.wr_src)
            self._sources = (rows, index)
        return index

    def gather(self, st, hin) -> np.ndarray:
        rows = self.plan.pool_rows(st)
        have, index = self._index
        if have is not rows:
            index = rows[self.row] * st.pool.shape[1] + self.col
            self._index = (rows, index)
        kept_rows, kept_writes, words = self._kept
        writes = st.written[rows] if self.reuse else None
        if not (kept_rows is rows and np.array_equal(writes, kept_writes)):
            words = st.pool.reshape(-1, self.plan.lanes)[index]
            if self.reuse:
                self._kept = (rows, writes, words)
        if len(self.wr_at):
            words[self.wr_at] = hin[self.wr_src]
        return words


def round_into(dtype: str, x: np.ndarray, out: np.ndarray) -> None:
    """out[...] = functional.round_to(dtype, x), with one conversion less: a float16
    stored into float32 widens exactly, as round_to's second astype does."""
    if dtype == "fp32":
        out[...] = x
    elif dtype == "fp16":
        out[...] = x.astype(np.float16)
    else:
        from speccc.targets.pim.functional import round_to
        out[...] = round_to(dtype, x)
