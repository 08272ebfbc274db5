"""Memory images that are copies of one array (the KV cache's keys and values), built
per run with one index operation and loaded with one assignment.

`key_image` / `value_image` place a [G, S, D] cache into bank rows with per-token and
per-row Python loops. What they produce only copies elements (or zero pads), so running
the same builder once on an array of element numbers gives, for every word of every
row, which element it holds: an `ImagePlan`. A run then builds the image as
`plan.image(data)`: a `RowImage` (the {(ch, bank, row): row} dict everyone reads) that
also carries the dense array, which `FunctionalState.load_image` writes with one
assignment into pool rows it looks up once per row layout.
"""
from __future__ import annotations

import weakref

import numpy as np

# element numbers are exact in float32 (the builders' dtype) below this
MAX_ELEMENTS = 2**24 - 1


class RowImage(dict):
    """{(ch, bank, row): (columns, lanes) array}, every row a view of `dense`."""

    def __init__(self, plan: "ImagePlan", dense: np.ndarray):
        super().__init__(zip(plan.keys, dense))
        self.plan, self.dense = plan, dense


class ImagePlan:
    """Where every word of a builder's image comes from (see module doc)."""

    def __init__(self, build, shape: tuple):
        numbers = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float32).reshape(shape)
        rows = build(numbers)
        self.keys = list(rows)
        self.source = (np.stack(list(rows.values())).astype(np.int64) if rows
                       else np.zeros((0, 0, 0), np.int64))          # 0: a zero pad
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def image(self, data: np.ndarray) -> RowImage:
        flat = np.empty(data.size + 1, np.float32)
        flat[0] = 0
        flat[1:] = data.reshape(-1)
        return RowImage(self, flat[self.source])

    def slots(self, st) -> np.ndarray:
        """Pool rows of `keys` in FunctionalState `st` (added if new), per row layout."""
        version, at = self._slots.get(st, (-1, None))
        if version != st.layout_version:
            at = np.array([st.slot(k) for k in self.keys], np.int64)
            self._slots[st] = (st.layout_version, at)
        return at


_plans: dict = {}


def planned_image(key: tuple, build, data: np.ndarray) -> dict:
    """build(data) through a cached ImagePlan (key: whatever fixes the placement, the
    data's shape included); small caches: a decode graph has a few attention shapes."""
    if data.size > MAX_ELEMENTS:
        return build(np.asarray(data, np.float32))
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) > 256:
            _plans.clear()
        plan = _plans[key] = ImagePlan(build, data.shape)
    return plan.image(np.asarray(data, np.float32))
