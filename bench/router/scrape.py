"""Reading swarm-router's own ``/metrics`` after a run."""

from __future__ import annotations

import re
import urllib.request

__all__ = ["added_latency_ms", "backend_shares"]


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def added_latency_ms(url: str) -> tuple[float, float]:
    """p50/p99 (ms) of the router's own ``swarm_router_added_latency_seconds`` histogram."""
    from swarm_runtime.vllm_metrics import Histogram

    buckets = [(float(m.group(1)), float(m.group(2))) for m in
               re.finditer(r'^swarm_router_added_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', _metrics(url), re.M)]
    hist = Histogram(tuple(buckets), 0.0, buckets[-1][1] if buckets else 0.0)
    return ((hist.quantile(0.5) or float("nan")) * 1e3, (hist.quantile(0.99) or float("nan")) * 1e3)


def backend_shares(url: str) -> dict[str, float]:
    """Share of requests each backend served, from the router's own counters."""
    counts = {m.group(1): float(m.group(2)) for m in
              re.finditer(r'^swarm_router_requests_total\{backend="(b\d+)",status="200"\} (\S+)$', _metrics(url), re.M)}
    total = sum(counts.values()) or 1.0
    return {k: v / total for k, v in counts.items()}
