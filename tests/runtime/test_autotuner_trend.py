"""The look-ahead thermal guard, queue-corroborated smoothing and the recommendation, as tables."""

from __future__ import annotations

from dataclasses import replace

import pytest
from swarm_runtime.autotuner.limit import GpuAwareLimit, LimitParams
from swarm_runtime.autotuner.recommend import MaxNumSeqsRecommender
from swarm_runtime.autotuner.smoothing import MedianFiltered
from swarm_runtime.autotuner.thermal import TemperatureTrend, predict_temperature
from swarm_runtime.autotuner.types import Reason, Sample

from tests.runtime.support import FakeClock
from tests.runtime.test_autotuner_limit import gpu, run_table, v

# Slowdown 84 (below the operator's 85): guard line 79, no growth once the temperature one
# time constant (20 s) ahead reaches 76. Additive growth, so every row is easy to check.
TREND = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=20, decrease_ratio=0.75,
                    max_growth_ratio=1.0, cooldown_s=15.0, busy_fraction=0.5, thermal_margin_c=5.0,
                    max_temp_c=85.0, hold_band_c=3.0, time_constant_s=20.0, trend_window=4)


def hot(temp: float) -> Sample:
    return Sample(v(0.2, running=30), gpu(temp, slowdown=84))


def test_thermal_guard_cuts_on_the_trend_before_the_level() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(TREND, clock)
    run_table(limit, clock, [
        (0, hot(60), 21, Reason.GROW),
        (5, hot(63), 22, Reason.GROW),                   # +0.6 °C/s: 70.6 predicted
        (10, hot(66), 23, Reason.GROW),                  # 73.6 predicted
        (15, hot(69), 23, Reason.HOLD_GPU_WARM),         # 76.6 predicted: stop growing
        # 84.9 predicted while 4 °C under the guard line, over it by more than the hold band:
        # floor(23 * sqrt(0.75)), half a level cut.
        (20, hot(75), 19, Reason.CUT_THERMAL_TREND),
        (25, hot(76), 19, Reason.HOLD_COOLDOWN),         # one point since the cut: no trend yet
        # Still rising 0.2 °C/s: 79.5 predicted, 0.5 over the line: one step, in the cool-down.
        (30, hot(77), 18, Reason.CUT_THERMAL_TREND),
        (35, hot(77), 18, Reason.HOLD_COOLDOWN),
        (40, hot(77), 18, Reason.HOLD_COOLDOWN),         # flat: the cut holds
        (45, hot(76), 18, Reason.HOLD_GPU_WARM),         # falling, but within the hold band
        (50, hot(74), 19, Reason.GROW),
        (55, hot(84), 2, Reason.CUT_THERMAL_EMERGENCY),  # at the slowdown threshold: always
        (60, hot(82), 2, Reason.HOLD_GPU_WARM),          # above the guard, just cut, not rising
        (65, hot(80), 2, Reason.HOLD_GPU_WARM),
    ])
    assert limit.safe_limit == 2


def test_a_thermal_cut_undoes_the_growth_that_heated_it_and_leaves_a_heat_knee() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(replace(TREND, initial_limit=8, max_growth_ratio=1.5), clock)
    run_table(limit, clock, [
        (0, hot(60), 11, Reason.GROW),                  # floor(8 * sqrt(0.4 / 0.2))
        (5, hot(60), 15, Reason.GROW),
        (10, hot(63), 21, Reason.GROW),                 # 66.8 predicted
        # 81.9 predicted, 2.9 over the line: one step would do, but the heat is the last growth's
        # (5 s ago, under one time constant): half-way back to its 15, floor(sqrt(15 * 21)).
        (15, hot(72), 17, Reason.CUT_THERMAL_TREND),
        (20, hot(74), 17, Reason.HOLD_COOLDOWN),
        (30, hot(75), 17, Reason.HOLD_GPU_WARM),        # 76.3 predicted
        (35, hot(74), 18, Reason.GROW),                 # past the heat knee: one step, not 1.41x
        (40, hot(73), 19, Reason.GROW),
        (45, hot(66), 20, Reason.GROW),                 # cooler: still a step at a time
        # Lighter prompts (a third of the KV per sequence): slow start forgets the knees, 1.5x.
        (50, Sample(v(0.2, running=30, kv=0.03), gpu(66, slowdown=84)), 30, Reason.GROW),
    ])


@pytest.mark.parametrize(("after_s", "temp", "expected"), [
    # 85.8 predicted: floor(28 * sqrt(0.75)) = 24, but the step from 20 was 15 s ago, under one
    # time constant (20 s): half-way back to it, floor(sqrt(20 * 28)).
    (15, 74, 23),
    (25, 78, 24),  # 87.1 predicted, the step 25 s ago: not what heats the GPU; the usual cut
])
def test_only_a_recent_growth_step_is_undone(after_s: float, temp: float, expected: int) -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(replace(TREND, max_growth_ratio=1.5), clock)
    run_table(limit, clock, [
        (0, hot(60), 28, Reason.GROW),  # floor(20 * sqrt(0.4 / 0.2))
        (after_s, hot(temp), expected, Reason.CUT_THERMAL_TREND),
    ])


@pytest.mark.parametrize(("ttft", "expected", "reason"), [
    (1.0, 14, Reason.CUT_TTFT),     # floor(20 * sqrt(0.5 / 1.0)) is deeper than the level cut's 15
    (0.6, 15, Reason.CUT_THERMAL),  # floor(20 * sqrt(0.5 / 0.6)) = 18 is not
])
def test_a_thermal_cut_during_a_ttft_breach_goes_as_deep_as_either(ttft: float, expected: int,
                                                                   reason: Reason) -> None:
    clock = FakeClock()
    run_table(GpuAwareLimit(TREND, clock), clock, [(0, Sample(v(ttft, running=30), gpu(79, slowdown=84)),
                                                    expected, reason)])


def test_a_warm_gpu_holding_still_lets_a_ttft_breach_cut() -> None:
    clock = FakeClock()
    run_table(GpuAwareLimit(TREND, clock), clock, [
        (0, Sample(v(0.2, running=30), gpu(79, slowdown=84)), 15, Reason.CUT_THERMAL),
        (5, Sample(v(0.2, running=15), gpu(80, slowdown=84)), 15, Reason.HOLD_GPU_WARM),  # no trend yet
        (10, Sample(v(1.0, running=15), gpu(80, slowdown=84)), 15, Reason.HOLD_SETTLING),  # drained just now
        # Not rising: the thermal guard would hold; the breach cuts, floor(15 * sqrt(0.5 / 1.0)).
        (12, Sample(v(1.0, running=15), gpu(80, slowdown=84)), 10, Reason.CUT_TTFT),
    ])


def test_the_trend_starts_over_after_any_cut() -> None:
    clock = FakeClock()
    run_table(GpuAwareLimit(TREND, clock), clock, [
        (0, hot(60), 21, Reason.GROW),
        (5, hot(63), 22, Reason.GROW),
        (10, Sample(v(1.0, running=30), gpu(66, slowdown=84)), 15, Reason.CUT_TTFT),  # 73.6 predicted
        # Over all four points: +0.78 °C/s, 81.9 predicted, a cut. But that rise is the load the
        # TTFT cut removed: with one point since, there is no trend yet.
        (15, hot(72), 15, Reason.HOLD_COOLDOWN),
    ])


def test_level_guard_repeats_while_the_temperature_keeps_rising() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(TREND, clock)
    run_table(limit, clock, [
        (0, hot(79), 15, Reason.CUT_THERMAL),
        (5, hot(80), 15, Reason.HOLD_GPU_WARM),  # no trend since the cut yet
        (10, hot(81), 11, Reason.CUT_THERMAL),   # +0.2 °C/s after the cut: cut again, cool-down or not
    ])


def test_temperature_trend() -> None:
    trend = TemperatureTrend(window=3)
    assert trend.slope() is None
    for t, c in [(0, 50), (5, 51), (10, 53), (15, 56)]:
        trend.add(t, c)
    assert trend.slope() == pytest.approx(0.5)  # fit over the last 3: 51, 53, 56
    assert trend.slope(after=10) is None
    assert predict_temperature(70, 0.5, 20) == pytest.approx(70 + 10 * 0.6321, abs=1e-3)
    assert predict_temperature(70, -1.0, 20) == 70  # never predicts below now
    assert predict_temperature(70, 0.5, 0) == 70    # time constant 0: level only
    with pytest.raises(ValueError):
        TemperatureTrend(window=1)


def test_a_queue_backed_breach_passes_the_median_filter() -> None:
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=24, cooldown_s=15.0)
    limit = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    run_table(limit, clock, [
        (0, Sample(v(0.42, running=24)), 24, Reason.HOLD_BAND),
        (5, Sample(v(0.42, running=24)), 24, Reason.HOLD_BAND),
        (10, Sample(v(3.0, running=24)), 24, Reason.HOLD_BAND),  # a lone spike: filtered
        (15, Sample(v(0.42, running=24)), 24, Reason.HOLD_BAND),
        (20, Sample(v(0.42, running=24)), 24, Reason.HOLD_BAND),
        # The same spike with 16 requests waiting inside vLLM is not noise (median 0.42 alone).
        (25, Sample(v(3.0, running=8, waiting=16, kv=0.99)), 8, Reason.CUT_QUEUE),
        (30, Sample(v(2.5, running=8, waiting=4, kv=0.99)), 8, Reason.HOLD_SETTLING),
        (35, Sample(v(1.2, running=8, kv=0.98)), 8, Reason.HOLD_SETTLING),
        # The stale samples were dropped: the first clean interval decides alone.
        (40, Sample(v(0.35, running=8, kv=0.98)), 8, Reason.HOLD_KV_CACHE),
        (45, Sample(v(0.3, running=8, kv=0.97)), 8, Reason.HOLD_KV_CACHE),
    ])


def test_recommendation_is_a_high_percentile_not_the_peak() -> None:
    clock = FakeClock()
    rec = MaxNumSeqsRecommender(clock, window_s=100, round_to=8, percentile=0.95)
    for i in range(19):
        clock.t = i
        rec.observe(17)
    clock.t = 19
    assert rec.observe(40) == 24  # one tick at 40 out of 20 is above the 95th percentile
    for i in range(20, 40):
        clock.t = i
        rec.observe(40)
    assert rec.recommendation() == 40  # held half the window: it counts
    clock.t = 200
    assert rec.observe(9) == 16  # the window moved on
    with pytest.raises(ValueError):
        MaxNumSeqsRecommender(clock, percentile=0)


def test_a_new_prompt_mix_restarts_the_windows() -> None:
    """Long prompts (KV full at 8 sequences) give way to short ones (8 sequences fill 1/6)."""
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=8, cooldown_s=15.0)
    limit = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    run_table(limit, clock, [
        (0, Sample(v(0.42, running=8, kv=1.0)), 8, Reason.HOLD_BAND),
        (5, Sample(v(0.42, running=8, kv=1.0)), 8, Reason.HOLD_BAND),
        # KV per sequence fell 6x: the medians (0.42 s, KV 1.0) would still say "knee"; they restart.
        (10, Sample(v(0.14, running=8, kv=0.17)), 12, Reason.GROW),
        (15, Sample(v(0.16, running=12, kv=0.25)), 18, Reason.GROW),
    ])
    clock2 = FakeClock()
    steady = MedianFiltered(GpuAwareLimit(params, clock2), window=3)
    run_table(steady, clock2, [  # the same TTFT drop with an unchanged mix waits for the median
        (0, Sample(v(0.42, running=8, kv=0.5)), 8, Reason.HOLD_BAND),
        (5, Sample(v(0.42, running=8, kv=0.5)), 8, Reason.HOLD_BAND),
        (10, Sample(v(0.14, running=8, kv=0.5)), 8, Reason.HOLD_BAND),
    ])
