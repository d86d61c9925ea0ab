"""The control law as sample -> limit tables with a fake clock (expected values by hand)."""

from __future__ import annotations

import itertools
import random

import pytest
from swarm_runtime.autotuner.limit import GpuAwareLimit, LimitParams
from swarm_runtime.autotuner.smoothing import MedianFiltered
from swarm_runtime.autotuner.types import GpuReading, Reason, Sample, VllmReading

from tests.runtime.support import FakeClock

# target 0.5 s: grow by one at TTFT < 0.4, dead band [0.4, 0.5], TTFT cuts by sqrt(target / TTFT)
# (at most to half), other cuts by half, 10 s cool-down; busy means running + waiting >= half the
# limit; KV pressure from 0.9, released below 0.8; level-only thermal guard (no look-ahead).
PARAMS = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=10, initial_limit=4, grow_below=0.8,
                     increase=1, decrease_ratio=0.5, min_cut_ratio=0.5, max_growth_ratio=1.0,
                     cooldown_s=10.0, kv_usage_max=0.9, kv_hysteresis=0.1, power_saturation=0.98,
                     busy_fraction=0.5, thermal_margin_c=5.0, max_temp_c=85.0, hold_band_c=3.0,
                     time_constant_s=0.0)


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
        (6, Sample(v(0.6)), 6, Reason.CUT_TTFT),              # floor(7 * sqrt(0.5 / 0.6)) = 6
        (7, Sample(v(2.0)), 6, Reason.HOLD_SETTLING),         # 10 in flight > 6: the cut has not held
        (8, Sample(v(2.0, running=6)), 6, Reason.HOLD_SETTLING),  # drained now; this interval is stale
        (9, Sample(v(2.0, running=6)), 3, Reason.CUT_TTFT),   # fresh breach, 3 s after the last cut
        (10, Sample(v(0.2, running=3)), 3, Reason.HOLD_COOLDOWN),  # the cool-down only gates growth
        (19, Sample(v(0.2)), 4, Reason.GROW),                 # 10 s after the cut
        (20, Sample(v(0.2, preemptions=1)), 2, Reason.CUT_PREEMPTION),  # the full cut
        (21, Sample(v(0.2, kv=0.95)), 2, Reason.HOLD_COOLDOWN),
        (31, Sample(v(0.2, kv=0.85)), 2, Reason.HOLD_KV_CACHE),  # latched at 0.95, 0.85 is not < 0.8
        (32, Sample(v(0.2, kv=0.79)), 3, Reason.GROW),          # released below 0.9 - 0.1
        (33, Sample(v(0.1, running=2, waiting=1)), 3, Reason.HOLD_VLLM_QUEUEING),
        (34, Sample(v(0.1)), 4, Reason.GROW),
    ])


def test_queueing_breach_cuts_to_what_vllm_runs_and_settles_at_the_knee() -> None:
    """Long prompts arrive: the KV cache holds 8 sequences, 16 more queue inside vLLM."""
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=24, cooldown_s=15.0)
    limit = GpuAwareLimit(params, clock)
    run_table(limit, clock, [
        (0, Sample(v(0.42, running=24)), 24, Reason.HOLD_BAND),
        (5, Sample(v(3.0, running=8, waiting=16, kv=0.99)), 8, Reason.CUT_QUEUE),  # Little: 8 run
        (10, Sample(v(2.5, running=8, waiting=4, kv=0.99)), 8, Reason.HOLD_SETTLING),  # still draining
        (15, Sample(v(1.2, running=8, kv=0.98)), 8, Reason.HOLD_SETTLING),  # drained; stale interval
        (20, Sample(v(0.35, running=8, kv=0.98)), 8, Reason.HOLD_KV_CACHE),  # no growth past the knee
        (25, Sample(v(0.3, running=8, kv=0.97)), 8, Reason.HOLD_KV_CACHE),
        (30, Sample(v(0.6, running=8, kv=0.97)), 7, Reason.CUT_TTFT),  # floor(8 * sqrt(0.5 / 0.6))
        # Short prompts again: KV per sequence fell from 0.12 to 0.03, so the knee is well above
        # the limit (and the KV knee is forgotten): slow start, by the whole ratio 0.4 / TTFT
        # (TTFT is about flat far below the knee), at most 1.5x.
        # The interval that saw the shift still holds long prompts' TTFT: 1.5x whatever it says.
        (45, Sample(v(0.3, running=7, kv=0.2)), 10, Reason.GROW),
        (50, Sample(v(0.22, running=10, kv=0.3)), 15, Reason.GROW),  # sqrt(0.4 / 0.22) would give 13
        # TTFT 1.45x the lowest of this slow start (over 1.25x): the knee is near. Slow start ends
        # with a hold, as at the band, and growth goes back to sqrt(0.4 / TTFT) steps.
        (55, Sample(v(0.32, running=15, kv=0.4)), 15, Reason.HOLD_KNEE),
        (60, Sample(v(0.45, running=15, kv=0.5)), 15, Reason.HOLD_BAND),
        (65, Sample(v(0.3, running=15, kv=0.5)), 17, Reason.GROW),   # floor(15 * 1.155)
        (70, Sample(v(0.39, running=17, kv=0.5)), 18, Reason.GROW),  # +1 at least
    ])


@pytest.mark.parametrize(("kv", "expected", "reason"), [
    (0.1, 10, Reason.GROW),          # a seventh of the KV per sequence: slow start, 1.5x
    (0.7, 7, Reason.HOLD_COOLDOWN),  # the same mix: the cut's cool-down holds
])
def test_a_slow_start_is_not_held_by_the_cool_down_of_the_old_mix(kv: float, expected: int,
                                                                  reason: Reason) -> None:
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=8, cooldown_s=15.0)
    run_table(GpuAwareLimit(params, clock), clock, [
        (0, Sample(v(0.6, running=8, kv=0.8)), 7, Reason.CUT_TTFT),  # floor(8 * sqrt(0.5 / 0.6))
        (5, Sample(v(0.2, running=7, kv=kv)), expected, reason),
    ])


def test_slow_start_after_lighter_prompts_only() -> None:
    """Slow start needs less KV per sequence (lighter prompts), not just fewer sequences."""
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=8, cooldown_s=15.0,
                         time_constant_s=0.0)
    limit = GpuAwareLimit(params, clock)
    run_table(limit, clock, [
        (0, Sample(v(0.3, running=8, kv=0.8)), 9, Reason.GROW),     # 0.1 KV per sequence
        (5, Sample(v(0.3, running=4, kv=0.4)), 9, Reason.HOLD_IDLE),  # fewer, same size: no slow start
        (10, Sample(v(0.3, running=9, kv=0.9)), 10, Reason.GROW),   # floor(9 * 1.155)
        # A tenth of the KV per sequence, but this interval's TTFT still holds the old prompts:
        # the band does not end a slow start on the tick that found the shift.
        (15, Sample(v(0.42, running=10, kv=0.1)), 10, Reason.HOLD_BAND),
        (20, Sample(v(0.2, running=10, kv=0.1)), 15, Reason.GROW),   # 0.4 / 0.2 capped at 1.5x, not 1.41x
        (25, Sample(v(0.24, running=15, kv=0.15), gpu(70, slowdown=None)), 22, Reason.GROW),
        # Warm GPU (guard 80, hold from 77): slow start ends, and growth goes back to sqrt steps.
        (30, Sample(v(0.3, running=22, kv=0.22), gpu(78, slowdown=None)), 22, Reason.HOLD_GPU_WARM),
        (35, Sample(v(0.3, running=22, kv=0.22), gpu(70, slowdown=None)), 25, Reason.GROW),
    ])


def test_fast_growth_stops_where_the_last_cut_came_from() -> None:
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=20, cooldown_s=10.0)
    limit = GpuAwareLimit(params, clock)
    run_table(limit, clock, [
        (0, Sample(v(0.6, running=20)), 18, Reason.CUT_TTFT),
        (10, Sample(v(0.1, running=18)), 19, Reason.GROW),   # 1.5x would be 27: the breach was at 20
        (15, Sample(v(0.3, running=19)), 20, Reason.GROW),   # from there one step at a time
        (20, Sample(v(0.15, running=20)), 30, Reason.GROW),  # 0.15 <= 0.4 / 2 up here: forget it
    ])


def test_ttft_cut_is_proportional_and_bounded() -> None:
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=30, cooldown_s=15.0)
    rows: list[tuple[float, int, Reason]] = [
        (0.55, 28, Reason.CUT_TTFT),   # floor(30 * 0.953): a marginal breach trims
        (0.8, 23, Reason.CUT_TTFT),    # floor(30 * 0.79)
        (2.0, 15, Reason.CUT_TTFT),    # sqrt(0.25) = 0.5
        (50.0, 15, Reason.CUT_TTFT),   # never below min_cut_ratio without a queue to explain it
    ]
    for ttft, expected, reason in rows:
        clock = FakeClock()
        limit = GpuAwareLimit(params, clock)
        assert limit.update(Sample(v(ttft, running=30))) == expected, ttft
        assert limit.last_decision is not None and limit.last_decision.reason is reason


def test_safe_limit_follows_every_cut() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(PARAMS, clock)
    run_table(limit, clock, [
        (0, Sample(v(0.2)), 5, Reason.GROW),
        (1, Sample(v(0.2)), 6, Reason.GROW),
        (2, Sample(v(0.2), gpu(80, slowdown=None)), 3, Reason.CUT_THERMAL),
        (3, Sample(None, gpu(60)), 3, Reason.HOLD_VLLM_DOWN),  # not back to 5
    ])
    assert limit.safe_limit == 3


def test_bounds_table() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(LimitParams(ttft_target_s=0.5, min_limit=3, max_limit=6, initial_limit=5,
                                      decrease_ratio=0.9, cooldown_s=0.0, busy_fraction=0.5), clock)
    run_table(limit, clock, [
        (0, Sample(v(0.1)), 6, Reason.GROW),
        (1, Sample(v(0.1)), 6, Reason.HOLD_AT_MAX),
        (2, Sample(v(0.51)), 5, Reason.CUT_TTFT),  # floor(6 * 0.99) = 5: a cut always moves by >= 1
        (3, Sample(v(0.51)), 4, Reason.CUT_TTFT),  # no cool-down configured
        (4, Sample(v(0.51)), 3, Reason.CUT_TTFT),
        (5, Sample(v(0.51)), 3, Reason.CUT_TTFT),  # floored at min_limit
    ])


def test_thermal_guard_table() -> None:
    clock = FakeClock()
    limit = GpuAwareLimit(LimitParams(**{**PARAMS.__dict__, "initial_limit": 8}), clock)
    # slowdown 83 < max_temp 85: ceiling 83, guard 78, no growth from 75.
    run_table(limit, clock, [
        (0, Sample(v(0.2), gpu(70, slowdown=83)), 9, Reason.GROW),
        (1, Sample(v(0.2), gpu(75, slowdown=83)), 9, Reason.HOLD_GPU_WARM),
        (2, Sample(v(0.2), gpu(78, slowdown=83)), 4, Reason.CUT_THERMAL),  # TTFT fine, still cut
        (3, Sample(v(0.2), gpu(79, slowdown=83)), 4, Reason.HOLD_GPU_WARM),  # no fresh rise yet
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
        (6, Sample(v(0.9)), 4, Reason.CUT_TTFT),    # second one: median 0.9; floor(6 * 0.745)
        (7, Sample(v(None)), 4, Reason.HOLD_NO_TRAFFIC),  # no traffic is not smoothed away
        (8, Sample(None), 4, Reason.HOLD_VLLM_DOWN),
    ])


def test_median_filter_judges_a_growth_step_by_its_own_samples() -> None:
    clock = FakeClock()
    params = LimitParams(ttft_target_s=0.5, min_limit=2, max_limit=64, initial_limit=10, cooldown_s=15.0)
    limit = MedianFiltered(GpuAwareLimit(params, clock), window=3)
    run_table(limit, clock, [
        (0, Sample(v(0.2, running=10)), 14, Reason.GROW),       # floor(10 * sqrt(0.4 / 0.2))
        # The new limit's first interval alone: median(0.2, 0.45) of the old window would grow again.
        (5, Sample(v(0.45, running=14)), 14, Reason.HOLD_BAND),
        (10, Sample(v(0.2, running=14)), 15, Reason.GROW),      # median(0.45, 0.2) = 0.325
        (15, Sample(v(0.9, running=15)), 11, Reason.CUT_TTFT),  # alone after a step: the step's doing
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

