"""A fake of the ``pynvml`` (nvidia-ml-py) functions the autotuner calls, for tests and benches.

``FakeNvml`` is passed where production passes the ``pynvml`` module. It raises pynvml's
own exception classes (so the probe's ``except nvml.NVMLError`` is exercised for real) and
serves per-GPU state that a test scripts directly or a :class:`ThermalModel` drives from load:
temperature rises towards ``ambient + heat * load`` with a first-order lag, utilisation and
power follow load, and the thermal clock-event bits are set once the slowdown threshold is
reached (and the model reports throttling, which a bench turns into slower tokens).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

__all__ = ["FakeGpu", "FakeNvml", "ThermalModel"]

THERMAL_SW = 0x20
THERMAL_HW = 0x40
POWER_CAP = 0x04


@dataclass
class FakeGpu:
    """Scriptable state of one fake GPU (units as NVML returns them)."""

    utilization_pct: int = 0
    memory_used_bytes: int = 2 * 1024**3
    memory_total_bytes: int = 24 * 1024**3
    temperature_c: float = 40.0
    slowdown_c: int = 90
    power_mw: int = 50_000
    power_limit_mw: int = 450_000
    clocks_event_reasons: int = 0
    model: ThermalModel | None = None
    unsupported: set[str] = field(default_factory=set)  # function names raising NotSupported
    fail_reads: bool = False  # every read raises NVMLError_GpuIsLost

    def refresh(self) -> None:
        if self.model is not None:
            self.model.apply(self)


class ThermalModel:
    """Load-driven GPU: ``load_fn() -> 0..1`` sets utilisation and power; temperature lags.

    ``temperature(t) -> ambient + heat * load`` with time constant ``tau_s``. Integrated on
    every read and on :meth:`advance`, so the probe sees a continuous curve.
    """

    def __init__(self, load_fn: Callable[[], float], ambient_c: float, heat_c: float, tau_s: float,
                 clock: Callable[[], float] = time.monotonic, idle_power_mw: int = 40_000,
                 utilization_fn: Callable[[float], float] | None = None) -> None:
        self.load_fn = load_fn
        # NVML utilisation is "a kernel was running", which saturates long before power does.
        self.utilization_fn = utilization_fn or (lambda load: 100.0 * load)
        self.ambient_c = ambient_c
        self.heat_c = heat_c
        self.tau_s = tau_s
        self.clock = clock
        self.idle_power_mw = idle_power_mw
        self.temperature_c = ambient_c
        self.max_seen_c = ambient_c
        self._load = 0.0
        self._last = clock()
        self._lock = threading.Lock()

    def advance(self) -> float:
        """Integrate up to now; returns the temperature."""
        with self._lock:
            now = self.clock()
            dt = max(0.0, now - self._last)
            self._last = now
            load = min(1.0, max(0.0, self.load_fn()))
            target = self.ambient_c + self.heat_c * load
            self.temperature_c = target + (self.temperature_c - target) * math.exp(-dt / self.tau_s)
            self.max_seen_c = max(self.max_seen_c, self.temperature_c)
            self._load = load
            return self.temperature_c

    def reset(self, temperature_c: float) -> None:
        """Start over from ``temperature_c`` (benches reset between runs)."""
        with self._lock:
            self.temperature_c = temperature_c
            self.max_seen_c = temperature_c
            self._last = self.clock()

    def apply(self, gpu: FakeGpu) -> None:
        temp = self.advance()
        gpu.temperature_c = temp
        gpu.utilization_pct = round(min(100.0, max(0.0, self.utilization_fn(self._load))))
        gpu.power_mw = int(self.idle_power_mw + (gpu.power_limit_mw - self.idle_power_mw) * self._load)
        reasons = gpu.clocks_event_reasons & ~(THERMAL_SW | THERMAL_HW)
        if temp >= gpu.slowdown_c:
            reasons |= THERMAL_SW
        gpu.clocks_event_reasons = reasons


class FakeNvml:
    """Drop-in for the ``pynvml`` functions used by :class:`~swarm_runtime.autotuner.nvml_probe.NvmlProbe`."""

    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN

    def __init__(self, gpus: list[FakeGpu] | None = None,
                 init_error: type[pynvml.NVMLError] | None = None) -> None:
        self.gpus = list(gpus) if gpus is not None else [FakeGpu()]
        self.init_error = init_error
        self.init_count = 0  # NVML reference-counts nvmlInit/nvmlShutdown
        self.calls: list[str] = []

    @classmethod
    def without_gpu(cls) -> FakeNvml:
        """Behaves like a host with no NVIDIA driver: ``nvmlInit`` raises LibraryNotFound."""
        return cls(gpus=[], init_error=pynvml.NVMLError_LibraryNotFound)

    def _gpu(self, handle: Any, name: str) -> FakeGpu:
        self.calls.append(name)
        if not self.initialized:
            raise pynvml.NVMLError_Uninitialized()
        gpu: FakeGpu = self.gpus[handle]
        if gpu.fail_reads:
            raise pynvml.NVMLError_GpuIsLost()
        if name in gpu.unsupported:
            raise pynvml.NVMLError_NotSupported()
        return gpu

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise self.init_error()
        self.init_count += 1

    def nvmlShutdown(self) -> None:
        if self.init_count == 0:
            raise pynvml.NVMLError_Uninitialized()
        self.init_count -= 1

    @property
    def initialized(self) -> bool:
        return self.init_count > 0

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialized:
            raise pynvml.NVMLError_Uninitialized()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not self.initialized:
            raise pynvml.NVMLError_Uninitialized()
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        gpu.refresh()
        return SimpleNamespace(gpu=gpu.utilization_pct, memory=gpu.utilization_pct)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        used, total = gpu.memory_used_bytes, gpu.memory_total_bytes
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperature")
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return math.floor(gpu.temperature_c)

    def nvmlDeviceGetTemperatureThreshold(self, handle: int, threshold: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTemperatureThreshold")
        if threshold != pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            raise pynvml.NVMLError_NotSupported()
        return gpu.slowdown_c

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").clocks_event_reasons
