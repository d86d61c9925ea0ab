"""The control law as sample -> limit tables with a fake clock (expected values by hand)."""

from __future__ import annotations

import itertools
import random

import pytest
from swarm_runtime.autotuner.limit import GpuAwareLimit, LimitParams
from swarm_runtime.autotuner.smoothing import MedianFiltered
from swarm_runtime.autotuner.types import GpuReading, Reason, Sample, VllmReading

from tests.runtime.support import FakeClock

# target 0.5 s: grow at TTFT <= 0.4, dead band (0.4, 0.5], cut above 0.5 by half,
# 10 s cool-down; busy means running + waiting >= half the limit.
PARAMS = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=10, initial_limit=4, grow_below=0.8,
                     increase=1, decrease_ratio=0.5, cooldown_s=10.0, kv_usage_max=0.9,
                     power_saturation=0.98, busy_fraction=0.5, thermal_margin_c=5.0, max_temp_c=85.0,
                     hold_band_c=3.0)


def v(ttft: float | None, running: float = 10, waiting: float = 0, kv: float = 0.1,
      preemptions: float = 0) -> VllmReading:
    return VllmReading(ttft_s=ttft, running=running, waiting=waiting, kv_cache_usage=kv,
                       preemptions=preemptions)


def gpu(temp: float, slowdown: float | None = 90, power: float | None = 0.5, thermal: bool = False,
        power_cap: bool = False) -> GpuReading:
    return GpuReading(utilization_pct=90, memory_used_frac=0.9, temperature_c=temp, slowdown_c=slowdown,
                      power_frac=power, thermal_throttle=thermal, power_throttle=power_cap)


def run_table(limit: GpuAwareLimit | MedianFiltered, clock: FakeClock,
              rows: list[tuple[float, Sample, int, Reason]]) -> None:
    for i, (t, sample, expected, reason) in enumerate(rows):
        clock.t = t
        got = limit.update(sample)
        decision = limit.last_decision
        assert decision is not None
        assert (got, decision.reason) == (expected, reason), f"row {i} at t={t}: {sample}"


def test_vllm_signals_table() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(PARAMS, clock)
    assert limit.limit == 4
    run_table(limit, clock, [
        (0, Sample(v(0.2)), 5, Reason.GROW),
        (1, Sample(v(0.3)), 6, Reason.GROW),
        (2, Sample(v(0.45)), 6, Reason.HOLD_BAND),            # dead band: neither grow nor cut
        (3, Sample(v(None)), 6, Reason.HOLD_NO_TRAFFIC),
        (4, Sample(v(0.3, running=2)), 6, Reason.HOLD_IDLE),  # 2 < 0.5 * 6: the cap is not binding
        (5, Sample(v(0.3, running=3)), 7, Reason.GROW),       # 3 >= 0.5 * 6
        (6, Sample(v(0.6)), 5, Reason.CUT_TTFT),              # floor(7 * 0.5 / 0.6)
        (7, Sample(v(2.0)), 5, Reason.HOLD_COOLDOWN),         # stale breach: no second cut
        (15, Sample(v(0.2)), 5, Reason.HOLD_COOLDOWN),        # 9 s after the cut
        (16, Sample(v(2.0)), 2, Reason.CUT_TTFT),             # gross breach: floor(5 * 0.5)
        (26, Sample(v(0.2)), 3, Reason.GROW),                 # 10 s after: growth resumes
        (27, Sample(v(0.2)), 4, Reason.GROW),
        (28, Sample(v(0.2, preemptions=1)), 2, Reason.CUT_PREEMPTION),  # always the full cut
        (38, Sample(v(0.2, kv=0.95)), 2, Reason.CUT_KV_CACHE),  # already at min_limit
        (48, Sample(v(0.1, running=2, waiting=1)), 2, Reason.HOLD_VLLM_QUEUEING),
        (49, Sample(v(0.1)), 3, Reason.GROW),
    ])


def test_bounds_table() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(LimitParams(ttft_target_s=0.5, min_limit=3, max_limit=6, initial_limit=5,
                                      decrease_ratio=0.9, cooldown_s=0.0, busy_fraction=0.5), clock)
    run_table(limit, clock, [
        (0, Sample(v(0.1)), 6, Reason.GROW),
        (1, Sample(v(0.1)), 6, Reason.HOLD_AT_MAX),
        (2, Sample(v(0.9)), 5, Reason.CUT_TTFT),  # floor(6 * 0.9) = 5: a cut always moves by >= 1
        (3, Sample(v(0.9)), 4, Reason.CUT_TTFT),  # no cool-down configured
        (4, Sample(v(0.9)), 3, Reason.CUT_TTFT),
        (5, Sample(v(0.9)), 3, Reason.CUT_TTFT),  # floored at min_limit
    ])


def test_thermal_guard_table() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(LimitParams(**{**PARAMS.__dict__, "initial_limit": 8}), clock)
    # slowdown 83 < max_temp 85: ceiling 83, guard 78, no growth from 75.
    run_table(limit, clock, [
        (0, Sample(v(0.2), gpu(70, slowdown=83)), 9, Reason.GROW),
        (1, Sample(v(0.2), gpu(75, slowdown=83)), 9, Reason.HOLD_GPU_WARM),
        (2, Sample(v(0.2), gpu(78, slowdown=83)), 4, Reason.CUT_THERMAL),  # TTFT fine, still cut
        (3, Sample(v(0.2), gpu(79, slowdown=83)), 4, Reason.HOLD_COOLDOWN),
        (4, Sample(v(0.2), gpu(83, slowdown=83)), 2, Reason.CUT_THERMAL_EMERGENCY),  # ignores cool-down
        (14, Sample(v(0.2), gpu(60, slowdown=83)), 3, Reason.GROW),
        (15, Sample(v(0.2), gpu(60, slowdown=83)), 4, Reason.GROW),
        # Without an NVML threshold the configured max_temp_c (85) is the ceiling: guard at 80.
        (16, Sample(v(0.2), gpu(79, slowdown=None)), 4, Reason.HOLD_GPU_WARM),
        (17, Sample(v(0.2), gpu(80, slowdown=None)), 2, Reason.CUT_THERMAL),
        (27, Sample(v(0.2), gpu(60)), 3, Reason.GROW),
        (28, Sample(v(0.2), gpu(60)), 4, Reason.GROW),
        # A GPU reporting a slowdown above the operator cap: the cap (85) wins.
        (29, Sample(v(0.2), gpu(84, slowdown=95)), 2, Reason.CUT_THERMAL),
        (39, Sample(v(0.2), gpu(60)), 3, Reason.GROW),
        (40, Sample(v(0.2), gpu(60)), 4, Reason.GROW),
        (41, Sample(v(0.2), gpu(60, thermal=True)), 2, Reason.CUT_THERMAL),  # throttle bit alone
        (51, Sample(v(0.2), gpu(60, power=0.99)), 2, Reason.HOLD_GPU_SATURATED),
        (52, Sample(v(0.2), gpu(60, power_cap=True)), 2, Reason.HOLD_GPU_SATURATED),
        (53, Sample(v(0.2), gpu(60)), 3, Reason.GROW),
        (54, Sample(v(0.2), gpu(60)), 4, Reason.GROW),
        # The thermal guard acts even while vLLM is unreachable.
        (55, Sample(None, gpu(81, slowdown=None)), 2, Reason.CUT_THERMAL),
    ])


def test_vllm_down_holds_last_safe_limit() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(PARAMS, clock)
    run_table(limit, clock, [
        (0, Sample(v(0.2)), 5, Reason.GROW),          # 4 met the target
        (1, Sample(v(0.2)), 6, Reason.GROW),          # 5 met the target; 6 not yet proven
        (2, Sample(None), 5, Reason.HOLD_VLLM_DOWN),  # back to the last proven limit
        (3, Sample(None), 5, Reason.HOLD_VLLM_DOWN),
        (4, Sample(v(0.2)), 6, Reason.GROW),
    ])
    assert limit.safe_limit == 5


def test_initial_limit_is_clamped() -> None:
    params = LimitParams(ttft_target_s=1.0, min_limit=4, max_limit=8, initial_limit=20)
    assert GpuAwareLimit(params, FakeClock()).limit == 8


def test_median_filter_ignores_a_lone_spike_but_follows_a_sustained_breach() -> None:
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=10, initial_limit=6,
                         cooldown_s=0.0, decrease_ratio=0.5, busy_fraction=0.5)
    limit = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    run_table(limit, clock, [
        (0, Sample(v(0.45)), 6, Reason.HOLD_BAND),
        (1, Sample(v(0.45)), 6, Reason.HOLD_BAND),
        (2, Sample(v(2.0)), 6, Reason.HOLD_BAND),   # median(0.45, 0.45, 2.0) = 0.45
        (3, Sample(v(0.45)), 6, Reason.HOLD_BAND),  # median(0.45, 2.0, 0.45)
        (4, Sample(v(0.45)), 6, Reason.HOLD_BAND),
        (5, Sample(v(0.9)), 6, Reason.HOLD_BAND),   # first sample of a real breach
        (6, Sample(v(0.9)), 3, Reason.CUT_TTFT),    # second one: median 0.9
        (7, Sample(v(None)), 3, Reason.HOLD_NO_TRAFFIC),  # no traffic is not smoothed away
        (8, Sample(None), 3, Reason.HOLD_VLLM_DOWN),
    ])


def _plant_ttft(limit: int, rng: random.Random) -> float:
    """A backend whose TTFT is flat to 20 sequences and climbs 50 ms per sequence beyond."""
    return max(0.01, 0.2 + 0.05 * max(0, limit - 20) + rng.gauss(0, 0.04))


def _reversals(limits: list[int]) -> int:
    moves = [b - a for a, b in itertools.pairwise(limits) if b != a]
    return sum(1 for a, b in itertools.pairwise(moves) if (a > 0) != (b > 0))


def _drive(limit: GpuAwareLimit | MedianFiltered, clock: FakeClock, seed: int, ticks: int = 400) -> list[int]:
    rng = random.Random(seed)
    seen = []
    for i in range(ticks):
        clock.t = i * 5.0
        current = limit.limit
        limit.update(Sample(v(_plant_ttft(current, rng), running=current)))
        seen.append(limit.limit)
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noisy_samples_do_not_make_it_flap(seed: int) -> None:
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=16, cooldown_s=15.0)
    clock = FakeClock()
    tuned = _drive(MedianFiltered(GpuAwareLimit(params, clock), window=3), clock, seed)
    # The same plant with hysteresis removed: no dead band, no cool-down, no filter.
    bare_params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=16,
                              grow_below=1.0, cooldown_s=0.0)
    bare_clock = FakeClock()
    bare = _drive(GpuAwareLimit(bare_params, bare_clock), bare_clock, seed)

    settled = tuned[100:]  # 300 ticks after convergence; the knee is at 24 (TTFT 0.4 s)
    assert min(settled) >= 22 and max(settled) <= 27, (min(settled), max(settled))
    assert _reversals(settled) <= 25  # at most one up/down turn per 12 ticks
    assert _reversals(bare[100:]) >= 5 * _reversals(settled)


def test_noise_inside_the_dead_band_and_lone_spikes_change_nothing() -> None:
    rng = random.Random(7)
    params = LimitParams(ttft_target_s=0.5, initial_limit=16, cooldown_s=15.0)
    clock = FakeClock()
    filtered = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    unfiltered = GpuAwareLimit(params, clock)
    seen, seen_unfiltered = set(), set()
    for i in range(200):
        clock.t = i * 5.0
        ttft = 1.5 if i % 7 == 3 else rng.uniform(0.41, 0.49)  # band is (0.4, 0.5]
        sample = Sample(v(ttft, running=16))
        seen.add(filtered.update(sample))
        seen_unfiltered.add(unfiltered.update(sample))
    assert seen == {16}
    assert min(seen_unfiltered) < 16  # the spikes are real enough to cut without the filter
