"""GPU signals through nvidia-ml-py (``import pynvml``), degraded gracefully without a GPU.

The NVML module is injected so tests pass :class:`swarm_runtime.testing.fake_nvml.FakeNvml`;
production passes ``pynvml`` itself. Every NVML failure is translated here: no library or
no device disables the probe with one log line, a field the GPU does not support reads as
None, and the tuner keeps going on vLLM metrics alone.
"""

from __future__ import annotations

import contextlib
import logging
from types import ModuleType
from typing import Any

import pynvml

from swarm_runtime.autotuner.types import GpuReading

__all__ = ["NvmlProbe", "open_probes"]

log = logging.getLogger(__name__)

# Clock-event reason bits (nvmlClocksEventReason*): SW thermal 0x20, HW thermal 0x40,
# SW power cap 0x04, HW power brake 0x80.
_THERMAL_BITS = 0x20 | 0x40
_POWER_BITS = 0x04 | 0x80


class NvmlProbe:
    """Reads one GPU. ``read()`` returns None while NVML is unavailable."""

    def __init__(self, gpu_index: int, nvml: ModuleType | Any = pynvml) -> None:
        self.gpu_index = gpu_index
        self._nvml = nvml
        self._handle: Any = None
        self._disabled_reason: str | None = None
        self._opened = False

    @property
    def available(self) -> bool:
        return self._handle is not None

    @property
    def disabled_reason(self) -> str | None:
        return self._disabled_reason

    def open(self) -> bool:
        """Initialise NVML and find the GPU; logs once and returns False if impossible."""
        if self._opened:
            return self.available
        self._opened = True
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            if self.gpu_index >= count:
                self._disable(f"GPU index {self.gpu_index} not present ({count} GPU(s) visible)")
                return False
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.gpu_index)
        except nvml.NVMLError as exc:
            self._disable(f"NVML unavailable ({exc})")
            return False
        except OSError as exc:  # a broken driver install can surface as a loader error
            self._disable(f"NVML unavailable ({exc})")
            return False
        return True

    def _disable(self, why: str) -> None:
        self._handle = None
        self._disabled_reason = why
        log.warning("GPU %d: %s; tuning on vLLM metrics only (no thermal guard from NVML)",
                    self.gpu_index, why)

    def close(self) -> None:
        if self._handle is not None:
            self._handle = None
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()

    def _optional(self, name: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, name)(self._handle, *args)
        except self._nvml.NVMLError:
            return None

    def read(self) -> GpuReading | None:
        """One reading, or None if NVML is unavailable or the GPU fell off the bus."""
        if self._handle is None:
            return None
        nvml = self._nvml
        try:
            util = nvml.nvmlDeviceGetUtilizationRates(self._handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(self._handle)
            temp = nvml.nvmlDeviceGetTemperature(self._handle, nvml.NVML_TEMPERATURE_GPU)
        except nvml.NVMLError as exc:
            log.warning("GPU %d: NVML read failed (%s); skipping GPU signals this tick", self.gpu_index, exc)
            return None
        slowdown = self._optional("nvmlDeviceGetTemperatureThreshold",
                                  nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)
        power = self._optional("nvmlDeviceGetPowerUsage")
        power_limit = self._optional("nvmlDeviceGetEnforcedPowerLimit")
        reasons = self._optional("nvmlDeviceGetCurrentClocksEventReasons")
        power_frac = power / power_limit if power is not None and power_limit else None
        return GpuReading(
            utilization_pct=float(util.gpu),
            memory_used_frac=float(mem.used) / float(mem.total) if mem.total else 0.0,
            temperature_c=float(temp),
            slowdown_c=float(slowdown) if slowdown else None,
            power_frac=power_frac,
            thermal_throttle=bool(reasons is not None and reasons & _THERMAL_BITS),
            power_throttle=bool(reasons is not None and reasons & _POWER_BITS),
        )


def open_probes(indices: list[int], nvml: ModuleType | Any = pynvml) -> dict[int, NvmlProbe]:
    """Open one probe per GPU index; a host without NVML logs exactly one line and gets none."""
    if not indices:
        return {}
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        log.warning("no GPU signals: NVML unavailable (%s); tuning on vLLM metrics only, "
                    "without the NVML thermal guard", exc)
        return {}
    probes: dict[int, NvmlProbe] = {}
    for index in sorted(set(indices)):
        probe = NvmlProbe(index, nvml)
        if probe.open():
            probes[index] = probe
    with contextlib.suppress(nvml.NVMLError):
        nvml.nvmlShutdown()  # balance our own init; each open probe holds its own reference
    return probes
