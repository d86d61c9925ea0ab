"""The GPU temperature's trend, for a thermal guard that acts before the level is reached.

A GPU heats like a first-order system: under constant power the temperature approaches
``T_eq`` with time constant ``tau``, and its rate of rise is ``(T_eq - T) / tau``. So the
slope measured now predicts where the temperature will be one time constant ahead:
``T + slope * tau * (1 - 1/e)``. The slope is a least-squares fit over the last few
samples (NVML reports whole degrees; a fit over several samples smooths the steps). Pure:
times come from the caller.
"""

from __future__ import annotations

import math
from collections import deque

from swarm_runtime.autotuner.types import GpuReading

__all__ = ["TemperatureTrend", "predict_temperature", "thermal_ceiling"]

_ONE_TAU = 1.0 - math.exp(-1.0)


def thermal_ceiling(gpu: GpuReading, max_temp_c: float) -> float:
    """The temperature never to reach: the GPU's slowdown threshold or the operator's cap."""
    if gpu.slowdown_c is None or gpu.slowdown_c <= 0:
        return max_temp_c
    return min(gpu.slowdown_c, max_temp_c)


def predict_temperature(temperature_c: float, slope_c_per_s: float | None, tau_s: float) -> float:
    """Temperature one time constant ahead if the load stays as it is (never below now)."""
    if slope_c_per_s is None or slope_c_per_s <= 0 or tau_s <= 0:
        return temperature_c
    return temperature_c + slope_c_per_s * tau_s * _ONE_TAU


class TemperatureTrend:
    """Recent ``(time, temperature)`` points and their least-squares slope in °C/s."""

    def __init__(self, window: int = 4) -> None:
        if window < 2:
            raise ValueError("window must be >= 2")
        self._points: deque[tuple[float, float]] = deque(maxlen=window)

    def add(self, at: float, temperature_c: float) -> None:
        self._points.append((at, temperature_c))

    def slope(self, after: float | None = None) -> float | None:
        """Slope over the points taken strictly after ``after``; None with fewer than two."""
        points = [p for p in self._points if after is None or p[0] > after]
        if len(points) < 2:
            return None
        mean_t = sum(t for t, _ in points) / len(points)
        mean_c = sum(c for _, c in points) / len(points)
        var = sum((t - mean_t) ** 2 for t, _ in points)
        if var <= 0:
            return None
        return sum((t - mean_t) * (c - mean_c) for t, c in points) / var
