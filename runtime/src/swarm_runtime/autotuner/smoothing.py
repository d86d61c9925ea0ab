"""Wrappers that filter samples before they reach a :class:`~.types.Limit`.

Kept apart from the control law so each can be tested alone (Netflix concurrency-limits
does the same with its windowed limits). Only the noisy vLLM signals are filtered: a
single preemption is a real event and temperature moves slowly, so both pass through.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import replace

from swarm_runtime.autotuner.types import Decision, Limit, Sample

__all__ = ["MedianFiltered"]


class MedianFiltered:
    """Feed the wrapped limit the running median of TTFT and KV usage over ``window`` samples.

    A lone outlier in a window of 3 cannot trigger a cut or a growth step on its own; a
    sustained change gets through after ``window // 2`` extra samples. Samples without
    vLLM data (outage) pass through unchanged and do not enter the window.
    """

    def __init__(self, inner: Limit, window: int = 3) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._inner = inner
        self._ttft: deque[float] = deque(maxlen=window)
        self._kv: deque[float] = deque(maxlen=window)

    @property
    def limit(self) -> int:
        return self._inner.limit

    @property
    def safe_limit(self) -> int:
        return self._inner.safe_limit

    @property
    def last_decision(self) -> Decision | None:
        return self._inner.last_decision

    @property
    def inner(self) -> Limit:
        return self._inner

    def update(self, sample: Sample) -> int:
        vllm = sample.vllm
        if vllm is None:
            return self._inner.update(sample)
        if vllm.ttft_s is not None:
            self._ttft.append(vllm.ttft_s)
        self._kv.append(vllm.kv_cache_usage)
        ttft = statistics.median(self._ttft) if vllm.ttft_s is not None and self._ttft else None
        smoothed = replace(vllm, ttft_s=ttft, kv_cache_usage=statistics.median(self._kv))
        return self._inner.update(replace(sample, vllm=smoothed))
