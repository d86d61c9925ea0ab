"""Wrappers that filter samples before they reach a :class:`~.types.Limit`.

Kept apart from the control law so each can be tested alone (Netflix concurrency-limits
does the same with its windowed limits). Only the noisy vLLM signals are filtered: a
single preemption is a real event and temperature moves slowly, so both pass through.
Samples taken before a cut or a growth step describe a limit that no longer exists, so
either (and a sample the limit judged stale, ``hold_settling``) empties the TTFT window: a
growth step is judged by what it did, not by a median still made of the lower limit's
samples. A TTFT breach that vLLM itself explains by queueing requests is not noise and passes unfiltered. KV usage per
running sequence measures the prompt mix; when it moves by more than ``mix_change``x the
workload changed, and the windows start over rather than mix two workloads' samples.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import replace

from swarm_runtime.autotuner.types import Decision, Limit, Reason, Sample, VllmReading

__all__ = ["MedianFiltered"]

# Besides cuts: decisions after which the TTFT samples so far describe another limit.
_STALE_AFTER = frozenset({Reason.GROW, Reason.HOLD_SETTLING})


class MedianFiltered:
    """Feed the wrapped limit the running median of TTFT and of the KV cache each sequence holds
    (times the sequences running now, as KV usage) over ``window`` samples.

    A lone outlier in a window of 3 cannot trigger a cut or a growth step on its own; a
    sustained change gets through after ``window // 2`` extra samples, at once if vLLM
    reports waiting requests with it. The exception is the first interval after a growth
    step: it is judged alone, and a breach there is the step's doing. Samples without vLLM data (outage) pass through
    unchanged and do not enter the window.
    """

    def __init__(self, inner: Limit, window: int = 3, mix_change: float = 2.0) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._inner = inner
        self._mix_change = mix_change
        self._ttft: deque[float] = deque(maxlen=window)
        self._kv: deque[float] = deque(maxlen=window)
        self._kv_per_seq: deque[float] = deque(maxlen=window)

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

    def check_gauges(self, sample: Sample) -> Decision | None:
        """Gauges pass through unfiltered (a full KV cache, a queue, a lighter mix are not noise)."""
        decision = self._inner.check_gauges(sample)
        self._forget_stale_ttft(decision)
        return decision

    def update(self, sample: Sample) -> int:
        vllm = sample.vllm
        if vllm is None:
            return self._inner.update(sample)
        if vllm.running >= 1 and vllm.kv_cache_usage > 0:
            per_seq = vllm.kv_cache_usage / vllm.running
            if self._kv_per_seq:
                typical = statistics.median(self._kv_per_seq)
                if max(per_seq / typical, typical / per_seq) > self._mix_change:
                    self._ttft.clear()  # another prompt mix: earlier samples describe another knee
                    self._kv.clear()
                    self._kv_per_seq.clear()
            self._kv_per_seq.append(per_seq)
        if vllm.ttft_s is not None:
            self._ttft.append(vllm.ttft_s)
        self._kv.append(vllm.kv_cache_usage)
        ttft = statistics.median(self._ttft) if vllm.ttft_s is not None and self._ttft else None
        if ttft is not None and vllm.ttft_s is not None and vllm.waiting >= 1:
            ttft = max(ttft, vllm.ttft_s)  # queueing inside vLLM explains the breach
        smoothed = replace(vllm, ttft_s=ttft, kv_cache_usage=self._smoothed_kv(vllm))
        limit = self._inner.update(replace(sample, vllm=smoothed))
        self._forget_stale_ttft(self._inner.last_decision)
        return limit

    def _smoothed_kv(self, vllm: VllmReading) -> float:
        """KV usage is the KV each sequence holds times how many run: the median is taken of the
        first and the count kept, so the KV per sequence the limit derives (its prompt-mix
        signal) is a median too, not the median of one count over another tick's count."""
        if vllm.running >= 1 and vllm.kv_cache_usage > 0 and self._kv_per_seq:
            return min(1.0, statistics.median(self._kv_per_seq) * vllm.running)
        return statistics.median(self._kv)

    def _forget_stale_ttft(self, decision: Decision | None) -> None:
        """After a cut or a growth step the TTFT samples so far describe a limit that is gone."""
        if decision is not None and (decision.reason.is_cut or decision.reason in _STALE_AFTER):
            self._ttft.clear()
