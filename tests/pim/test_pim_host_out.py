"""HostOut's dense view answers exactly what the dict holds, and only while it may."""
from __future__ import annotations

import numpy as np
import pytest

from speccc.targets.pim.host_out import HostOut, stack_outputs


def _block(out: HostOut, dsts, seed: int):
    values = np.random.default_rng(seed).standard_normal((len(dsts) + 2, 4, 16)).astype(np.float32)
    rows = np.arange(len(dsts))[::-1] + 1
    dsts = np.asarray(dsts, np.int64)
    out.add_block(dsts, values, rows, np.argsort(dsts, kind="stable"))


def _via_dict(out, keys):
    return np.stack([dict.__getitem__(out, k) for k in keys])


def test_one_block_is_read_densely_and_equals_the_dict():
    out = HostOut()
    _block(out, [7, 3, 5, 11], 0)
    keys = [11, 3, 5, 5, 7]
    assert out.blocks is not None and len(out.blocks) == 1
    assert np.array_equal(stack_outputs(out, keys), _via_dict(out, keys))
    with pytest.raises(KeyError):
        stack_outputs(out, [3, 4])


@pytest.mark.parametrize("write", [
    lambda o: o.__setitem__(3, np.zeros((4, 16), np.float32)),
    lambda o: o.update({5: np.ones((4, 16), np.float32)}),
    lambda o: _block(o, [3, 9], 1),                 # a second block over the first
])
def test_other_writes_fall_back_to_the_dict(write):
    out = HostOut()
    _block(out, [7, 3, 5, 11], 0)
    write(out)
    keys = [3, 5, 7]
    assert np.array_equal(stack_outputs(out, keys), _via_dict(out, keys))
    out.clear()
    _block(out, [1, 2], 2)                          # a clear starts a dense view again
    assert len(out.blocks) == 1
    assert np.array_equal(stack_outputs(out, [2, 1]), _via_dict(out, [2, 1]))
