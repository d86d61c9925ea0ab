"""The control law: an AIMD concurrency limit gated by TTFT, vLLM pressure and GPU state.

In the spirit of Netflix concurrency-limits (``Limit.update(sample) -> int``) and Envoy's
adaptive concurrency filter, but the "RTT" is vLLM's time to first token and the GPU gets a
vote: the limit grows additively only while TTFT is comfortably under target, the cap is
actually binding and the GPU is neither power-saturated nor warm; it is cut multiplicatively
on a TTFT breach (by ``target / ttft``, at least one step and at most ``decrease_ratio``, as
in Gradient2, so a marginal breach trims rather than halves), new preemptions, a full KV
cache or the thermal guard (always the full ``decrease_ratio``).

Hysteresis comes from three places: a dead band between ``grow_below * target`` and the
target where the limit holds, a cool-down after every cut (the cut's effect needs time to
show, and a second cut on stale data is how AIMD loops collapse), and the median filter in
:mod:`.smoothing`. No I/O and no wall clock here: the clock is injected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swarm_runtime.autotuner.config import ControlConfig, TargetConfig, ThermalConfig
from swarm_runtime.autotuner.types import Clock, Decision, GpuReading, Reason, Sample

__all__ = ["GpuAwareLimit", "LimitParams", "thermal_ceiling"]


@dataclass(frozen=True)
class LimitParams:
    """Everything :class:`GpuAwareLimit` needs; see :mod:`.config` for meanings and defaults."""

    ttft_target_s: float
    min_limit: int = 2
    max_limit: int = 64
    initial_limit: int = 16
    grow_below: float = 0.8
    increase: int = 1
    decrease_ratio: float = 0.75
    cooldown_s: float = 15.0
    kv_usage_max: float = 0.95
    power_saturation: float = 0.98
    busy_fraction: float = 0.8
    thermal_margin_c: float = 5.0
    max_temp_c: float = 85.0
    hold_band_c: float = 3.0

    @classmethod
    def from_config(cls, target: TargetConfig, thermal: ThermalConfig, control: ControlConfig) -> LimitParams:
        return cls(
            ttft_target_s=target.ttft_target_s,
            min_limit=target.min_limit,
            max_limit=target.max_limit,
            initial_limit=target.initial_limit,
            grow_below=control.grow_below,
            increase=control.increase,
            decrease_ratio=control.decrease_ratio,
            cooldown_s=control.cooldown_s,
            kv_usage_max=control.kv_usage_max,
            power_saturation=control.power_saturation,
            busy_fraction=control.busy_fraction,
            thermal_margin_c=thermal.margin_c,
            max_temp_c=thermal.max_temp_c,
            hold_band_c=thermal.hold_band_c,
        )


def thermal_ceiling(gpu: GpuReading, max_temp_c: float) -> float:
    """The temperature never to reach: the GPU's slowdown threshold or the operator's cap."""
    if gpu.slowdown_c is None or gpu.slowdown_c <= 0:
        return max_temp_c
    return min(gpu.slowdown_c, max_temp_c)


class GpuAwareLimit:
    """Bounded AIMD limit; ``update`` is pure apart from its own state and the injected clock."""

    def __init__(self, params: LimitParams, clock: Clock) -> None:
        self._p = params
        self._clock = clock
        self._limit = min(max(params.initial_limit, params.min_limit), params.max_limit)
        self._safe_limit = self._limit
        self._last_cut_at: float | None = None
        self._last: Decision | None = None

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def safe_limit(self) -> int:
        """The last limit under which the TTFT target held (what an outage falls back to)."""
        return self._safe_limit

    @property
    def last_decision(self) -> Decision | None:
        return self._last

    def update(self, sample: Sample) -> int:
        now = self._clock()
        previous = self._limit
        limit, reason = self._decide(sample, now)
        limit = min(max(limit, self._p.min_limit), self._p.max_limit)
        if reason.is_cut:
            self._last_cut_at = now
        self._limit = limit
        self._last = Decision(limit=limit, previous=previous, reason=reason, at=now)
        return limit

    def _cut(self, ratio: float | None = None) -> int:
        ratio = self._p.decrease_ratio if ratio is None else max(self._p.decrease_ratio, ratio)
        return min(self._limit - 1, math.floor(self._limit * ratio))

    def _in_cooldown(self, now: float) -> bool:
        return self._last_cut_at is not None and now - self._last_cut_at < self._p.cooldown_s

    def _decide(self, sample: Sample, now: float) -> tuple[int, Reason]:
        p = self._p
        cooling = self._in_cooldown(now)
        gpu = sample.gpu
        warm = False
        if gpu is not None:
            ceiling = thermal_ceiling(gpu, p.max_temp_c)
            guard = ceiling - p.thermal_margin_c
            if gpu.temperature_c >= ceiling:
                return p.min_limit, Reason.CUT_THERMAL_EMERGENCY
            if gpu.temperature_c >= guard or gpu.thermal_throttle:
                if cooling:
                    return self._limit, Reason.HOLD_COOLDOWN
                return self._cut(), Reason.CUT_THERMAL
            warm = gpu.temperature_c >= guard - p.hold_band_c

        vllm = sample.vllm
        if vllm is None:
            # Nothing to judge by: fall back to the last limit known to meet the target.
            return min(self._limit, self._safe_limit), Reason.HOLD_VLLM_DOWN

        breach: Reason | None = None
        if vllm.preemptions > 0:
            breach = Reason.CUT_PREEMPTION
        elif vllm.kv_cache_usage >= p.kv_usage_max:
            breach = Reason.CUT_KV_CACHE
        elif vllm.ttft_s is not None and vllm.ttft_s > p.ttft_target_s:
            breach = Reason.CUT_TTFT
        if breach is not None:
            if cooling:
                return self._limit, Reason.HOLD_COOLDOWN
            if breach is Reason.CUT_TTFT and vllm.ttft_s:
                # Gradient-style: a marginal breach trims, a gross one gets the full cut.
                return self._cut(p.ttft_target_s / vllm.ttft_s), breach
            return self._cut(), breach

        if vllm.ttft_s is not None:
            self._safe_limit = self._limit
        if cooling:
            return self._limit, Reason.HOLD_COOLDOWN
        if vllm.ttft_s is None:
            return self._limit, Reason.HOLD_NO_TRAFFIC
        if vllm.ttft_s > p.grow_below * p.ttft_target_s:
            return self._limit, Reason.HOLD_BAND
        if warm:
            return self._limit, Reason.HOLD_GPU_WARM
        if gpu is not None and (
            gpu.power_throttle or (gpu.power_frac is not None and gpu.power_frac >= p.power_saturation)
        ):
            return self._limit, Reason.HOLD_GPU_SATURATED
        if vllm.waiting >= 1:
            # vLLM's own max_num_seqs (or KV space) binds: a higher cap only moves the queue.
            return self._limit, Reason.HOLD_VLLM_QUEUEING
        if vllm.running + vllm.waiting < p.busy_fraction * self._limit:
            return self._limit, Reason.HOLD_IDLE
        if self._limit >= p.max_limit:
            return self._limit, Reason.HOLD_AT_MAX
        return self._limit + p.increase, Reason.GROW
