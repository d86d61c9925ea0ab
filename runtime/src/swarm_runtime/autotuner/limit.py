"""The control law: a concurrency limit gated by TTFT, vLLM pressure and the GPU's temperature.

In the spirit of Netflix concurrency-limits (``Limit.update(sample) -> int``), Gradient2 and
Envoy's adaptive concurrency filter, but the "RTT" is vLLM's time to first token and the GPU
gets a vote. Pure: no I/O, the clock is injected, all state is this object's.

Descent is proportional to the breach. When vLLM queues requests itself, the breach is
queueing, and Little's law says what the engine sustains: it serves ``running`` sequences
at its service rate, anything above that only waits, so the limit goes straight to
``running``. Otherwise TTFT grows with the batch past the knee, and the limit moves by the
square root of ``target / ttft`` (half-way in log space, so a convex TTFT curve is not
over-cut), at most to ``min_cut_ratio``. A second cut needs evidence taken under the first:
vLLM's in-flight count has come down to the new limit and one full interval has passed since
(``hold_settling`` until then), or the cool-down has run out. The cool-down only gates growth.
Between ticks, :meth:`GpuAwareLimit.check_gauges` acts on vLLM's gauges and the GPU alone: the
queueing cut when the queue stands on a full KV cache (no TTFT is needed to know the rest only
waits), and a slow start's first step when the prompts got lighter (below).

Growth is the mirror image: by ``sqrt(grow_below * target / ttft)``, at most
``max_growth_ratio`` and at least ``increase``, only while the cap binds, the GPU is cool
(now and one time constant ahead, see :mod:`.thermal`), and vLLM neither queues nor has its
KV cache above ``kv_usage_max`` (released below ``kv_usage_max - kv_hysteresis``), so the
limit settles at the knee instead of sawing through it. When the KV cache each running
sequence holds halves from one tick to the next, the prompts got lighter and the knee moved
far up: a slow start (TCP's name) grows by the whole ratio ``grow_below * target / ttft``
(TTFT is about flat far below the knee), at most ``max_growth_ratio``, forgets the knees of
the old mix and is not held by the cool-down of its cuts. It ends at the first sign of a
knee: TTFT 1.25x the lowest it has seen (HyStart's delay signal; ``hold_knee`` for that
tick), band, pressure, heat or a cut. Lighter prompts are seen between ticks too: the first
step is taken there, if vLLM has room, the cap binds and the GPU is cool, and the next tick's
TTFT (an interval that began under the old mix) cannot end the slow start by a dead band alone.

Thermal cuts are proportional too: a predicted overshoot of the guard line by less than
``hold_band_c`` costs one step, a larger one half a level cut (in log space), reaching the
line a level cut (``decrease_ratio``). Heat lags load by a time constant, so a growth step can
look cool for a tick or two and then overheat: a thermal cut within one time constant of a
growth goes at least half-way (in log space) back to where that growth started, and the
limit it leaves is a heat knee: growth reaches it fast but passes it one ``increase`` at a
time (a cooler room still gets its limit back, a tick at a time), until a slow start:
lighter prompts draw less power per sequence. A thermal cut during a TTFT breach goes as deep
as the breach's own cut would, and a thermal hold does not stop a breach's cut. The
temperature trend is taken over samples since the last cut of any kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swarm_runtime.autotuner.config import ControlConfig, TargetConfig, ThermalConfig
from swarm_runtime.autotuner.thermal import TemperatureTrend, predict_temperature, thermal_ceiling
from swarm_runtime.autotuner.types import Clock, Decision, GpuReading, Reason, Sample, VllmReading

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
    min_cut_ratio: float = 0.5
    max_growth_ratio: float = 1.5
    cooldown_s: float = 15.0
    kv_usage_max: float = 0.95
    kv_hysteresis: float = 0.1
    power_saturation: float = 0.98
    busy_fraction: float = 0.8
    thermal_margin_c: float = 5.0
    max_temp_c: float = 85.0
    hold_band_c: float = 3.0
    time_constant_s: float = 30.0
    trend_window: int = 4

    @classmethod
    def from_config(cls, target: TargetConfig, thermal: ThermalConfig, control: ControlConfig) -> LimitParams:
        return cls(
            ttft_target_s=target.ttft_target_s, min_limit=target.min_limit, max_limit=target.max_limit,
            initial_limit=target.initial_limit, grow_below=control.grow_below, increase=control.increase,
            decrease_ratio=control.decrease_ratio, min_cut_ratio=control.min_cut_ratio,
            max_growth_ratio=control.max_growth_ratio, cooldown_s=control.cooldown_s,
            kv_usage_max=control.kv_usage_max, kv_hysteresis=control.kv_hysteresis,
            power_saturation=control.power_saturation, busy_fraction=control.busy_fraction,
            thermal_margin_c=thermal.margin_c, max_temp_c=thermal.max_temp_c,
            hold_band_c=thermal.hold_band_c, time_constant_s=thermal.time_constant_s,
            trend_window=thermal.trend_window,
        )


# Slow start ends once TTFT rises this much over the lowest TTFT it has seen (HyStart's delay
# signal in TCP: the batch has started to queue prefills, the knee is near).
_SLOW_START_RISE = 1.25
# Decisions that say nothing about where the knee is: slow start outlives them.
_KEEPS_SLOW_START = frozenset({Reason.GROW, Reason.HOLD_COOLDOWN, Reason.HOLD_IDLE, Reason.HOLD_NO_TRAFFIC,
                               Reason.HOLD_SETTLING})


class GpuAwareLimit:
    """Bounded limit; ``update`` is pure apart from its own state and the injected clock."""

    def __init__(self, params: LimitParams, clock: Clock) -> None:
        self._p = params
        self._clock = clock
        self._limit = min(max(params.initial_limit, params.min_limit), params.max_limit)
        self._safe_limit = self._limit
        self._last_cut_at: float | None = None
        self._settled_at: float | None = None  # first sample after the last cut that shows it held
        self._last_thermal_cut_at: float | None = None
        self._pressure = False  # vLLM queueing or KV cache full; latched with hysteresis
        self._cut_from: int | None = None  # the limit the last cut came down from
        self._kv_per_seq: float | None = None  # KV usage per running sequence at the last sample
        self._slow_start = False  # lighter prompts were seen and no knee since
        self._slow_start_ttft = math.inf  # the lowest TTFT seen by this slow start
        self._grown_from: tuple[int, float] | None = None  # (limit, time) of the last growth since a cut
        self._heat_knee: int | None = None  # the limit a thermal cut left; growth past it goes step by step
        self._mixed_interval = False  # the interval the next tick judges began under the old prompt mix
        self._trend = TemperatureTrend(params.trend_window)
        self._last: Decision | None = None

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def safe_limit(self) -> int:
        """The last limit under which the TTFT target held, never above a later cut."""
        return self._safe_limit

    @property
    def last_decision(self) -> Decision | None:
        return self._last

    def update(self, sample: Sample) -> int:
        now = self._clock()
        if sample.gpu is not None:
            self._trend.add(now, sample.gpu.temperature_c)
        decision = self._apply(*self._decide(sample, now), now)
        self._mixed_interval = False
        return decision.limit

    def check_gauges(self, sample: Sample) -> Decision | None:
        """Between ticks, from vLLM's gauges (no TTFT) and the GPU now: a queueing cut, a slow
        start's first step, or None.

        vLLM queueing on a full KV cache while it runs fewer sequences than the limit is a
        breach no TTFT needs to confirm (a lighter limit would not have admitted the queue,
        Little's law says the rest only waits), and each interval it lasts admits more of
        the new, heavier mix. Unlike a TTFT cut it needs no settling: ``running`` under a full
        KV cache is measured now, whatever was admitted before, so it follows ``running``
        down as the old mix drains (never below it, never above the limit).

        Lighter prompts are the mirror image: the tick would take the same blind first step
        (the interval's TTFT is the old mix's), only later. It is taken here only if a tick
        would grow on these readings: no queue, KV cache under its release line, the cap
        binding, the GPU neither warm (now or one time constant ahead) nor power-saturated.
        """
        gauges = sample.vllm
        if gauges is None:
            return None
        now = self._clock()
        running = math.floor(gauges.running)
        if gauges.waiting >= 1 and gauges.kv_cache_usage >= self._p.kv_usage_max and 1 <= running < self._limit:
            return self._apply(running, Reason.CUT_QUEUE, now)
        if self._lighter_prompts(gauges) and self._may_grow_between_ticks(gauges, sample.gpu, now):
            self._note_prompt_mix(gauges)  # a slow start; the next tick's interval is a mixed one
            return self._apply(self._grown(0.0, now), Reason.GROW, now)
        return None

    def _apply(self, limit: int, reason: Reason, now: float) -> Decision:
        """Bound ``limit``, update every piece of state a decision of ``reason`` moves, record it."""
        previous = self._limit
        limit = min(max(limit, self._p.min_limit), self._p.max_limit)
        if reason not in _KEEPS_SLOW_START and not (reason is Reason.HOLD_BAND and self._mixed_interval):
            self._slow_start = False  # the knee (or the heat) is near; the shift's own mixed sample is not
        if reason is Reason.GROW:
            self._grown_from = (previous, now)
        if reason.is_cut:
            self._last_cut_at, self._settled_at, self._cut_from = now, None, previous
            self._grown_from = None
            self._safe_limit = min(self._safe_limit, limit)
            if reason in (Reason.CUT_THERMAL, Reason.CUT_THERMAL_TREND, Reason.CUT_THERMAL_EMERGENCY):
                self._last_thermal_cut_at, self._heat_knee = now, limit
        self._limit = limit
        self._last = Decision(limit=limit, previous=previous, reason=reason, at=now)
        return self._last

    # ----- pieces -------------------------------------------------------------------------

    def _cut(self, ratio: float) -> int:
        return min(self._limit - 1, math.floor(self._limit * ratio))

    def _since_cut(self, now: float) -> float:
        return math.inf if self._last_cut_at is None else now - self._last_cut_at

    def _note_settled(self, vllm: VllmReading, now: float) -> None:
        if self._last_cut_at is not None and self._settled_at is None \
                and vllm.running + vllm.waiting <= self._limit:
            self._settled_at = now  # drained to the new limit: the next interval is clean

    def _may_cut_again(self, now: float) -> bool:
        """A later cut needs evidence from under the earlier one (or the cool-down to pass)."""
        if self._last_cut_at is None or self._since_cut(now) >= self._p.cooldown_s:
            return True
        return self._settled_at is not None and now > self._settled_at

    def _update_pressure(self, vllm: VllmReading) -> None:
        p = self._p
        if vllm.waiting >= 1 or vllm.kv_cache_usage >= p.kv_usage_max:
            self._pressure = True
        elif self._pressure and vllm.kv_cache_usage < p.kv_usage_max - p.kv_hysteresis:
            self._pressure = False
            self._cut_from = None  # the knee the last cut found was the KV cache's: it has room now

    def _lighter_prompts(self, vllm: VllmReading) -> bool:
        """Each sequence takes less than half the KV cache it took at the last tick."""
        if vllm.running < 1 or vllm.kv_cache_usage <= 0 or self._kv_per_seq is None:
            return False
        return vllm.kv_cache_usage / vllm.running < self._kv_per_seq / 2

    def _note_prompt_mix(self, vllm: VllmReading) -> None:
        """Slow start on lighter prompts: the knee is now well above the limit and every knee
        learnt so far (TTFT's and the heat's) belongs to the old mix.
        """
        if vllm.running < 1 or vllm.kv_cache_usage <= 0:
            return
        if self._lighter_prompts(vllm):
            self._slow_start, self._cut_from, self._heat_knee = True, None, None
            self._slow_start_ttft = math.inf
            self._mixed_interval = True
        self._kv_per_seq = vllm.kv_cache_usage / vllm.running

    def _may_grow_between_ticks(self, vllm: VllmReading, gpu: GpuReading | None, now: float) -> bool:
        """The gates of a tick's growth that need no TTFT, on gauges read between ticks."""
        p = self._p
        if vllm.waiting >= 1 or vllm.kv_cache_usage >= p.kv_usage_max - p.kv_hysteresis:
            return False
        if vllm.running < p.busy_fraction * self._limit or self._limit >= p.max_limit:
            return False
        if gpu is None:
            return True
        decision, warm = self._thermal(gpu, now)
        return decision is None and not warm and not self._power_saturated(gpu)

    def _power_saturated(self, gpu: GpuReading) -> bool:
        return gpu.power_throttle or (gpu.power_frac is not None and gpu.power_frac >= self._p.power_saturation)

    def _thermal_cut(self, cut: int, now: float) -> int:
        """``cut``, or deeper: half-way (in log space) back to where the last growth started if that
        was under one time constant ago. Its heat is only now showing, and more of it is coming.
        """
        if self._grown_from is not None and now - self._grown_from[1] <= self._p.time_constant_s:
            cut = min(cut, math.floor(math.sqrt(self._grown_from[0] * self._limit)))
        return cut

    def _thermal(self, gpu: GpuReading, now: float) -> tuple[tuple[int, Reason] | None, bool]:
        """A thermal decision (or None) and whether the GPU is too warm to grow."""
        p = self._p
        ceiling = thermal_ceiling(gpu, p.max_temp_c)
        guard = ceiling - p.thermal_margin_c
        temp = gpu.temperature_c
        if temp >= ceiling:
            return (p.min_limit, Reason.CUT_THERMAL_EMERGENCY), True
        # The trend since the last cut (of any kind): earlier points describe a load that is gone.
        slope = self._trend.slope(after=self._last_cut_at)
        predicted = predict_temperature(temp, slope, p.time_constant_s)
        level = temp >= guard or gpu.thermal_throttle
        if level or predicted >= guard:
            recent = (self._last_thermal_cut_at is not None
                      and now - self._last_thermal_cut_at < p.cooldown_s)
            rising = slope is not None and slope > 0
            if recent and not rising:
                return (self._limit, Reason.HOLD_GPU_WARM), True  # the last cut is taking effect
            if level:
                return (self._thermal_cut(self._cut(p.decrease_ratio), now), Reason.CUT_THERMAL), True
            # A prediction leaves time: half the level cut (in log space), one step if it overshoots
            # the guard line by less than the hold band; repeated if the rise goes on.
            step = (self._limit - p.increase if predicted - guard < p.hold_band_c
                    else self._cut(math.sqrt(p.decrease_ratio)))
            return (self._thermal_cut(step, now), Reason.CUT_THERMAL_TREND), True
        return None, predicted >= guard - p.hold_band_c

    def _breached(self, vllm: VllmReading) -> bool:
        return vllm.preemptions > 0 or (vllm.ttft_s is not None and vllm.ttft_s > self._p.ttft_target_s)

    def _breach_cut(self, vllm: VllmReading) -> tuple[int, Reason]:
        p = self._p
        if vllm.preemptions > 0:
            return self._cut(p.decrease_ratio), Reason.CUT_PREEMPTION
        ttft = vllm.ttft_s or math.inf
        if vllm.waiting >= 1 and vllm.running >= 1:
            # Little's law: the engine sustains `running` at its service rate; the rest queue.
            return min(self._limit - 1, math.floor(vllm.running)), Reason.CUT_QUEUE
        return self._cut(max(p.min_cut_ratio, math.sqrt(p.ttft_target_s / ttft))), Reason.CUT_TTFT

    def _grown(self, ttft: float, now: float) -> int:
        """Fast growth to one step short of where the last cut came from, one step at a time past it.

        Like TCP's slow-start threshold: the level of the last breach is where the knee was.
        It is forgotten once the limit stands there with TTFT under half the growth line, or
        when a full KV cache that stopped growth has room again (the workload got lighter).
        The limit a thermal cut left is a knee too (the heat of a step shows a time constant
        later, too late for the look-ahead to stop a big one): up to it fast, past it by
        ``increase``, until lighter prompts (a slow start) make every sequence draw less.
        """
        p = self._p
        goal = p.grow_below * p.ttft_target_s
        if ttft <= 0 or self._mixed_interval:
            ratio = p.max_growth_ratio  # no TTFT, or the old mix's (the interval that saw the shift)
        elif self._slow_start:
            self._slow_start_ttft = min(self._slow_start_ttft, ttft)
            ratio = min(p.max_growth_ratio, goal / ttft)  # TTFT is about flat far below the knee
        else:
            ratio = min(p.max_growth_ratio, math.sqrt(goal / ttft))
        fast = math.floor(self._limit * ratio)
        if self._cut_from is not None:
            if self._limit >= self._cut_from and ttft <= goal / 2:
                self._cut_from = None
            else:
                fast = min(fast, self._cut_from - p.increase)
        if self._heat_knee is not None:
            fast = min(fast, self._heat_knee)
        return max(self._limit + p.increase, fast)

    def _decide(self, sample: Sample, now: float) -> tuple[int, Reason]:
        p = self._p
        gpu = sample.gpu
        warm = False
        vllm = sample.vllm
        if gpu is not None:
            decision, warm = self._thermal(gpu, now)
            breached = vllm is not None and self._breached(vllm)
            if decision is not None and decision[1].is_cut:
                if vllm is not None and breached:
                    return min(decision, self._breach_cut(vllm), key=lambda d: d[0])  # the deeper one
                return decision
            if decision is not None and not breached:
                return decision  # a warm GPU holds; a TTFT breach still goes on to cut

        if vllm is None:
            # Nothing to judge by: fall back to the last limit known to meet the target.
            return min(self._limit, self._safe_limit), Reason.HOLD_VLLM_DOWN
        self._update_pressure(vllm)
        self._note_prompt_mix(vllm)
        self._note_settled(vllm, now)

        if self._breached(vllm):
            if not self._may_cut_again(now):
                return self._limit, Reason.HOLD_SETTLING
            return self._breach_cut(vllm)

        if vllm.ttft_s is not None:
            self._safe_limit = self._limit
        if self._since_cut(now) < p.cooldown_s and not self._slow_start:
            # A slow start began after the cut: the cut was the old mix's, and so is its cool-down.
            return self._limit, Reason.HOLD_COOLDOWN
        if vllm.ttft_s is None:
            return self._limit, Reason.HOLD_NO_TRAFFIC
        if vllm.ttft_s > p.grow_below * p.ttft_target_s:
            return self._limit, Reason.HOLD_BAND
        if warm:
            return self._limit, Reason.HOLD_GPU_WARM
        if gpu is not None and self._power_saturated(gpu):
            return self._limit, Reason.HOLD_GPU_SATURATED
        if self._pressure:
            # vLLM queues or its KV cache is full: a higher cap only moves the queue inside.
            return self._limit, Reason.HOLD_VLLM_QUEUEING if vllm.waiting >= 1 else Reason.HOLD_KV_CACHE
        if vllm.running + vllm.waiting < p.busy_fraction * self._limit:
            return self._limit, Reason.HOLD_IDLE
        if self._limit >= p.max_limit:
            return self._limit, Reason.HOLD_AT_MAX
        if self._slow_start and not self._mixed_interval \
                and vllm.ttft_s > _SLOW_START_RISE * self._slow_start_ttft:
            return self._limit, Reason.HOLD_KNEE  # TTFT started to climb: slow start ends here
        return self._grown(vllm.ttft_s, now), Reason.GROW
