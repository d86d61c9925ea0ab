"""vLLM signals: scrape ``/metrics``, difference counters and histograms between scrapes.

Parsing (current and deprecated metric names) is :mod:`swarm_runtime.vllm_metrics`; this
module only turns two consecutive scrapes into one interval's reading. Network errors are
translated at this boundary into ``None`` ("vLLM unreachable"), which the control law
answers by holding the last safe limit.
"""

from __future__ import annotations

import logging

import aiohttp

from swarm_runtime.autotuner.types import VllmReading
from swarm_runtime.vllm_metrics import Histogram, VllmMetrics, parse_vllm_metrics

__all__ = ["VllmProbe", "interval_reading"]

log = logging.getLogger(__name__)


def _window_quantile(now: Histogram | None, before: Histogram | None, q: float) -> float | None:
    if now is None:
        return None
    window = now.minus(before) if before is not None else None
    return window.quantile(q) if window is not None else None


def interval_reading(now: VllmMetrics, before: VllmMetrics | None, quantile: float) -> VllmReading:
    """The reading for the interval between two scrapes (the first scrape has no TTFT)."""
    preemptions = 0.0
    if before is not None:
        delta = now.preemptions_total - before.preemptions_total
        preemptions = delta if delta >= 0 else now.preemptions_total  # counter reset
    return VllmReading(
        ttft_s=_window_quantile(now.ttft, before.ttft if before else None, quantile),
        running=now.running,
        waiting=now.waiting,
        kv_cache_usage=now.kv_cache_usage,
        preemptions=preemptions,
        inter_token_s=_window_quantile(now.inter_token, before.inter_token if before else None, 0.5),
    )


class VllmProbe:
    """Scrapes one vLLM server; ``await read()`` returns None when it cannot be reached."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, quantile: float = 0.9,
                 timeout_s: float = 2.0) -> None:
        self.url = base_url.rstrip("/") + "/metrics"
        self._session = session
        self._quantile = quantile
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._previous: VllmMetrics | None = None
        self._down = False

    @property
    def reachable(self) -> bool:
        return not self._down

    async def _scrape(self) -> VllmMetrics:
        async with self._session.get(self.url, timeout=self._timeout) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=f"HTTP {resp.status}")
            return parse_vllm_metrics(await resp.text())

    async def read_gauges(self) -> VllmReading | None:
        """vLLM's gauges now (``ttft_s`` None, no preemptions), or None if unreachable.

        Leaves the interval alone: the next :meth:`read` still differences against the
        previous ``read``, so its TTFT covers the whole interval. Errors are the tick's to
        report.
        """
        try:
            metrics = await self._scrape()
        except (TimeoutError, aiohttp.ClientError):
            return None
        return VllmReading(ttft_s=None, running=metrics.running, waiting=metrics.waiting,
                           kv_cache_usage=metrics.kv_cache_usage, preemptions=0.0)

    async def read(self) -> VllmReading | None:
        try:
            metrics = await self._scrape()
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not self._down:
                log.warning("vLLM %s unreachable (%s); holding the last safe limit", self.url,
                            exc or type(exc).__name__)
            self._down = True
            # A gap makes the next difference span the outage: start a fresh window instead.
            self._previous = None
            return None
        if self._down:
            log.info("vLLM %s reachable again", self.url)
            self._down = False
        reading = interval_reading(metrics, self._previous, self._quantile)
        self._previous = metrics
        return reading
