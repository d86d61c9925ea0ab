"""The ``max_num_seqs`` to deploy with the next ``pulumi up``.

Changing vLLM's ``--max-num-seqs`` needs a restart, so the tuner only recommends it: a high
percentile (by time held) of the limits over the window, rounded up to a multiple of
``round_to`` (vLLM captures CUDA graphs for batch sizes in steps of 8). Below that, vLLM
itself would queue what the router lets through and the router's cap would stop being the
control; a percentile rather than the peak keeps a brief excursion from setting it.
"""

from __future__ import annotations

import math
from collections import deque

from swarm_runtime.autotuner.types import Clock

__all__ = ["MaxNumSeqsRecommender"]


class MaxNumSeqsRecommender:
    def __init__(self, clock: Clock, window_s: float = 3600.0, round_to: int = 8,
                 max_points: int = 10_000, percentile: float = 0.95) -> None:
        if not 0 < percentile <= 1:
            raise ValueError("percentile must be in (0, 1]")
        self._clock = clock
        self._percentile = percentile
        self._window_s = window_s
        self._round_to = round_to
        self._points: deque[tuple[float, int]] = deque(maxlen=max_points)

    def observe(self, limit: int) -> int | None:
        """Record the limit in force now and return the current recommendation."""
        now = self._clock()
        self._points.append((now, limit))
        while self._points and now - self._points[0][0] > self._window_s:
            self._points.popleft()
        return self.recommendation()

    def recommendation(self) -> int | None:
        if not self._points:
            return None
        held = sorted(limit for _, limit in self._points)
        high = held[max(0, math.ceil(self._percentile * len(held)) - 1)]
        return max(self._round_to, math.ceil(high / self._round_to) * self._round_to)
