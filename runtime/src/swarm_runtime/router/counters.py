"""What vLLM's token counters say an engine did between two scrapes (no I/O).

vLLM V1 counts a prompt whole, its cached prefix included, in ``prompt_tokens_total`` once the
prompt's first token is out, and the cached part in ``prefix_cache_hits_total`` when it admits
the request. Only the rest cost the engine prefill work, so that is what an interval reports; a
hit counted an interval before its prompt carries over to the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vllm_metrics import VllmMetrics

__all__ = ["Interval", "TokenCounters"]


@dataclass(frozen=True, slots=True)
class Interval:
    """One scrape interval as the counters tell it."""

    seconds: float
    generated: float  # output tokens made
    prompt_tokens: float | None  # prompt tokens computed (cache hits left out); None when the counters restarted
    running: float  # the running gauge, mean of the interval's two ends


class TokenCounters:
    """Turns successive scrapes into :class:`Interval` s."""

    def __init__(self) -> None:
        self._last: tuple[float, float, float, float, float] | None = None  # time, generated, prompt, hits, running
        self._unmatched_hits = 0.0  # cached tokens counted at admission whose prompt is not counted yet

    def interval(self, metrics: VllmMetrics, now: float) -> Interval | None:
        """The interval since the previous scrape (None at the first)."""
        previous = self._last
        self._last = (now, metrics.generation_tokens_total, metrics.prompt_tokens_total,
                      metrics.prefix_cache_hits_total, metrics.running)
        if previous is None:
            return None
        computed = self._computed(metrics.prompt_tokens_total - previous[2],
                                  metrics.prefix_cache_hits_total - previous[3])
        return Interval(now - previous[0], metrics.generation_tokens_total - previous[1], computed,
                        (metrics.running + previous[4]) / 2)

    def _computed(self, counted: float, hits: float) -> float | None:
        if counted < 0 or hits < 0:  # the engine restarted
            self._unmatched_hits = 0.0
            return None
        computed = counted - hits - self._unmatched_hits
        self._unmatched_hits = max(0.0, -computed)
        return max(0.0, computed)
