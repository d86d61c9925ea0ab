"""Between ticks: the gauge check's queueing cut and slow start, as tables with a fake clock."""

from __future__ import annotations

import pytest
from swarm_runtime.autotuner.limit import GpuAwareLimit, LimitParams
from swarm_runtime.autotuner.smoothing import MedianFiltered
from swarm_runtime.autotuner.types import Reason, Sample

from tests.runtime.support import FakeClock
from tests.runtime.test_autotuner_limit import PARAMS, gpu, run_table, v


def check(limit: GpuAwareLimit | MedianFiltered, running: float, waiting: float, kv: float) -> int | None:
    decision = limit.check_gauges(Sample(v(None, running=running, waiting=waiting, kv=kv)))
    return None if decision is None else decision.limit


def test_queue_check_between_ticks_table() -> None:
    """vLLM queueing on a full KV cache under the limit: cut to ``running`` at once, no TTFT needed."""
    clock = FakeClock()
    limit = GpuAwareLimit(PARAMS, clock)  # limit 4, KV pressure from 0.9
    run_table(limit, clock, [(0, Sample(v(0.3)), 5, Reason.GROW), (1, Sample(v(0.3)), 6, Reason.GROW),
                             (2, Sample(v(0.3)), 7, Reason.GROW), (3, Sample(v(0.3)), 8, Reason.GROW)])
    clock.t = 3.5
    assert check(limit, running=5, waiting=3, kv=0.85) is None   # the KV cache has room: a passing queue
    assert check(limit, running=5, waiting=0, kv=0.95) is None   # full, nothing waits: the knee itself
    assert check(limit, running=8, waiting=3, kv=0.95) is None   # running at the limit: the queue is not ours
    assert check(limit, running=6, waiting=3, kv=0.95) == 6      # Little's law: the rest only waits
    assert limit.last_decision is not None and limit.last_decision.reason is Reason.CUT_QUEUE
    clock.t = 3.7
    assert check(limit, running=4.5, waiting=5, kv=0.97) == 4    # follows running down, no settling
    assert check(limit, running=1, waiting=5, kv=0.97) == 2      # never under min_limit
    # A cut like any other: the cool-down holds growth at the next tick.
    run_table(limit, clock, [(5, Sample(v(0.3, running=2)), 2, Reason.HOLD_COOLDOWN)])
    assert limit.safe_limit == 2


# Default growth (1.5x at most), 15 s cool-down, guard line 79 (slowdown 84), hold from 76.
SLOW_START = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=8, cooldown_s=15.0,
                         time_constant_s=20.0)


def after_long_prompts(params: LimitParams = SLOW_START) -> tuple[GpuAwareLimit, FakeClock]:
    """A limit of 8 pinned by long prompts (0.12 of the KV cache each), cut 3 s before t=5."""
    clock = FakeClock()
    limit = GpuAwareLimit(params, clock)
    run_table(limit, clock, [(2, Sample(v(0.6, running=8, kv=0.96)), 7, Reason.CUT_TTFT),
                             (5, Sample(v(0.3, running=7, kv=0.84)), 7, Reason.HOLD_COOLDOWN)])
    return limit, clock


def gauges(running: float, kv: float, waiting: float = 0, temp: float | None = 60,
           power: float = 0.5) -> Sample:
    return Sample(v(None, running=running, waiting=waiting, kv=kv),
                  None if temp is None else gpu(temp, slowdown=84, power=power))


@pytest.mark.parametrize(("sample", "expected"), [
    (gauges(running=7, kv=0.14), 10),                # 0.02 per sequence, a sixth: floor(7 * 1.5)
    (gauges(running=7, kv=0.14, temp=None), 10),     # no GPU to ask: vLLM alone decides
    (gauges(running=7, kv=0.49), None),              # 0.07 per sequence: not under half of 0.12
    (gauges(running=5, kv=0.1), None),               # 5 < 0.8 * 7: the cap does not bind
    (gauges(running=7, kv=0.14, waiting=1), None),   # vLLM queues: a higher cap moves the queue inside
    (gauges(running=7, kv=0.14, temp=77), None),     # within the hold band of the guard line (79)
    (gauges(running=7, kv=0.14, power=0.99), None),  # power-saturated
])
def test_lighter_prompts_between_ticks_start_a_slow_start_if_a_tick_would_grow(sample: Sample,
                                                                                expected: int | None) -> None:
    limit, clock = after_long_prompts()
    clock.t = 6
    decision = limit.check_gauges(sample)
    assert (None if decision is None else (decision.limit, decision.reason)) == \
        (None if expected is None else (expected, Reason.GROW))


def test_a_slow_start_begun_between_ticks_goes_on_at_the_ticks() -> None:
    limit, clock = after_long_prompts()
    clock.t = 6
    assert limit.check_gauges(gauges(running=7, kv=0.14)) is not None  # 7 -> 10
    clock.t = 6.5
    assert limit.check_gauges(gauges(running=10, kv=0.2)) is None  # the same light mix: nothing new
    run_table(limit, clock, [
        # The interval began under the long prompts: its TTFT in the band holds, and slow start
        # (inside the cut's cool-down) goes on.
        (10, Sample(v(0.45, running=10, kv=0.2)), 10, Reason.HOLD_BAND),
        (12, Sample(v(0.2, running=10, kv=0.2)), 15, Reason.GROW),  # 0.4 / 0.2, at most 1.5x
        (14, Sample(v(0.45, running=15, kv=0.3)), 15, Reason.HOLD_BAND),  # a clean interval: slow start ends
        (16, Sample(v(0.2, running=15, kv=0.3)), 15, Reason.HOLD_COOLDOWN),  # the cut's cool-down is back
    ])


def test_a_dip_in_running_at_a_tick_is_not_a_lighter_mix_between_ticks() -> None:
    """The median is taken of the KV per sequence, not of KV usage measured at other counts."""
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=24, time_constant_s=0.0)
    limit = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    run_table(limit, clock, [
        (0, Sample(v(0.42, running=24, kv=0.5)), 24, Reason.HOLD_BAND),
        (5, Sample(v(0.42, running=24, kv=0.5)), 24, Reason.HOLD_BAND),
        (10, Sample(v(0.42, running=10, kv=0.21)), 24, Reason.HOLD_BAND),  # fewer sequences, same size
    ])
    clock.t = 11
    # A median KV usage of 0.5 over 10 sequences would make this look like 0.4x the KV each.
    assert check(limit, running=24, waiting=0, kv=0.5) is None
    assert check(limit, running=24, waiting=0, kv=0.2) == 36  # 0.4x: lighter prompts, slow start


def test_queue_check_empties_the_median_window() -> None:
    clock = FakeClock()
    limit = MedianFiltered(GpuAwareLimit(PARAMS, clock), window=3)
    run_table(limit, clock, [(0, Sample(v(0.45)), 4, Reason.HOLD_BAND), (1, Sample(v(0.45)), 4, Reason.HOLD_BAND)])
    clock.t = 1.5
    assert check(limit, running=3, waiting=2, kv=0.95) == 3
    # Without the clear, the median of (0.45, 0.45, 0.2) would hold; the cut's own sample stands.
    run_table(limit, clock, [(20, Sample(v(0.2, running=3, kv=0.03)), 4, Reason.GROW)])  # same KV per sequence
