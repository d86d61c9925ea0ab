"""Value types shared by the probes, the control law and the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["Clock", "Decision", "GpuReading", "Limit", "Reason", "Sample", "VllmReading"]

Clock = Callable[[], float]


@dataclass(frozen=True)
class GpuReading:
    """One NVML reading of one GPU. Optional fields are None when the GPU does not report them."""

    utilization_pct: float
    memory_used_frac: float
    temperature_c: float
    slowdown_c: float | None = None
    power_frac: float | None = None  # power draw / enforced limit
    thermal_throttle: bool = False  # SW or HW thermal slowdown clock-event bit set
    power_throttle: bool = False  # SW power cap bit set


@dataclass(frozen=True)
class VllmReading:
    """vLLM signals over one interval (histograms already differenced between scrapes)."""

    ttft_s: float | None  # configured quantile of TTFT in the interval; None: no first token
    running: float
    waiting: float
    kv_cache_usage: float  # 0..1
    preemptions: float  # new preemptions in the interval
    inter_token_s: float | None = None


@dataclass(frozen=True)
class Sample:
    """Everything the control law sees at one tick. ``vllm`` None: vLLM was unreachable."""

    vllm: VllmReading | None
    gpu: GpuReading | None = None


class Reason(StrEnum):
    """Why the limit moved (or did not); exported as a metric label."""

    GROW = "grow"
    HOLD_BAND = "hold_band"
    HOLD_COOLDOWN = "hold_cooldown"
    HOLD_IDLE = "hold_idle"
    HOLD_NO_TRAFFIC = "hold_no_traffic"
    HOLD_AT_MAX = "hold_at_max"
    HOLD_GPU_SATURATED = "hold_gpu_saturated"
    HOLD_GPU_WARM = "hold_gpu_warm"
    HOLD_VLLM_QUEUEING = "hold_vllm_queueing"
    HOLD_KV_CACHE = "hold_kv_cache"
    HOLD_VLLM_DOWN = "hold_vllm_down"
    HOLD_SETTLING = "hold_settling"
    HOLD_KNEE = "hold_knee"
    CUT_TTFT = "cut_ttft"
    CUT_QUEUE = "cut_queue"
    CUT_PREEMPTION = "cut_preemption"
    CUT_THERMAL = "cut_thermal"
    CUT_THERMAL_TREND = "cut_thermal_trend"
    CUT_THERMAL_EMERGENCY = "cut_thermal_emergency"

    @property
    def is_cut(self) -> bool:
        return self.value.startswith("cut_")


@dataclass(frozen=True)
class Decision:
    """The outcome of one ``update``: the new limit, the previous one and why."""

    limit: int
    previous: int
    reason: Reason
    at: float


class Limit(Protocol):
    """A concurrency limit: pure, bounded, no I/O (Netflix concurrency-limits' ``Limit``)."""

    @property
    def limit(self) -> int: ...

    @property
    def safe_limit(self) -> int: ...

    @property
    def last_decision(self) -> Decision | None: ...

    def update(self, sample: Sample) -> int: ...

    def check_gauges(self, sample: Sample) -> Decision | None:
        """Between ticks, from vLLM's gauges (``ttft_s`` None) and the GPU: a decision, or None."""
        ...
