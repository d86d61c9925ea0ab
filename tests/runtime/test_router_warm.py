"""Where a session or prefix was last sent (``router/warm.py``): what affinity prefers."""

from __future__ import annotations

import pytest
from swarm_runtime.router.warm import WarmPrefixes

from tests.runtime.support import FakeClock


def test_a_key_is_warm_where_it_was_last_sent_until_its_ttl_passes() -> None:
    clock = FakeClock()
    warm = WarmPrefixes(ttl_s=60, capacity=10, clock=clock)
    assert warm.where(1) is None and warm.where(None) is None  # never sent: warm nowhere
    warm.sent(1, "a")
    clock.t = 30
    warm.sent(1, "b")  # the session moved: its newest cache is on b
    clock.t = 89
    assert warm.where(1) == "b"
    clock.t = 91
    assert warm.where(1) is None and len(warm) == 0  # forgotten, and dropped


def test_the_least_recently_sent_keys_are_forgotten_first() -> None:
    warm = WarmPrefixes(ttl_s=60, capacity=3, clock=FakeClock())
    for k in range(3):
        warm.sent(k, f"b{k}")
    warm.sent(0, "b0")  # 0 is the newest again
    warm.sent(3, "b3")
    assert len(warm) == 3 and warm.where(1) is None
    assert [warm.where(k) for k in (0, 2, 3)] == ["b0", "b2", "b3"]


@pytest.mark.parametrize(("ttl_s", "capacity"), [(0, 10), (-1, 10), (60, 0)])
def test_bad_bounds_are_refused(ttl_s: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="ttl_s > 0 and capacity >= 1"):
        WarmPrefixes(ttl_s, capacity, FakeClock())
