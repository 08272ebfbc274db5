"""KV-cache images through a cached row_image.ImagePlan equal the builders' own loops
(every row, every word, zero pads included), and load into the same pool rows."""
from __future__ import annotations

import numpy as np
import pytest

from speccc.hw import load_hw
from speccc.targets.pim import kv_keys, kv_values
from speccc.targets.pim.functional import FunctionalState
from speccc.targets.pim.row_image import RowImage


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("hw_name", ["hbm-pim", "aim-gddr6"])
@pytest.mark.parametrize("G,S,D,count", [(2, 9, 16, 7), (4, 12, 32, 12), (1, 5, 24, 0)])
def test_planned_images_equal_the_loops(hw_name, G, S, D, count):
    hw = load_hw(hw_name)
    rng = np.random.default_rng(G * S)
    kl = kv_keys.plan_keys(hw, D, G, 40)
    vl = kv_values.plan_values(hw, D, G, 40)
    for _ in range(2):                      # the second call reuses the plan
        K, V = (rng.standard_normal((G, S, D)).astype(np.float32) for _ in range(2))
        keys = kv_keys.key_image(kl, K, count)
        values = kv_values.value_image(hw, vl, V, count)
        assert _same(keys, kv_keys._key_rows(kl, K, count))
        assert _same(values, kv_values._value_rows(hw, vl, V, count))
        assert count == 0 or isinstance(keys, RowImage) and isinstance(values, RowImage)


def test_row_image_loads_as_a_plain_dict():
    hw = load_hw("hbm-pim")
    kl = kv_keys.plan_keys(hw, 16, 2, 40)
    K = np.random.default_rng(1).standard_normal((2, 9, 16)).astype(np.float32)
    fast, slow = FunctionalState(hw), FunctionalState(hw)
    for st in (fast, slow):
        st.load_image({(0, 0, 39): np.ones((hw.pim.columns, hw.pim.pu.lanes), np.float32)})
    for _ in range(2):                      # again: pool rows looked up once
        image = kv_keys.key_image(kl, K, 9)
        fast.load_image(image)
        slow.load_image(dict(image))
        K = K * 2
    assert fast.index == slow.index
    n = len(fast.index) + 1
    assert np.array_equal(fast.pool[:n], slow.pool[:n])
    assert np.array_equal(fast.written[:n], slow.written[:n])
