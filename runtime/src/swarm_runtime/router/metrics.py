"""The router's Prometheus metrics, on a per-app registry (never the process-global one).

Counters and histograms are updated on the data path; gauges that mirror pool state are
read at scrape time by a collector, so the data path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .breaker import STATE_CODES
from .pool import Pool

__all__ = ["BackendMetrics", "RouterMetrics"]

_LATENCY_BUCKETS = (0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _PoolCollector(Collector):
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        backends = list(self.pool.backends.values())
        families = {
            "in_flight": GaugeMetricFamily("swarm_router_backend_in_flight",
                                           "Requests the router has in flight to the backend.", labels=["backend"]),
            "limit": GaugeMetricFamily("swarm_router_backend_limit",
                                       "Current concurrency cap of the backend.", labels=["backend"]),
            "healthy": GaugeMetricFamily("swarm_router_backend_healthy",
                                         "1 if active health checks pass.", labels=["backend"]),
            "breaker": GaugeMetricFamily("swarm_router_backend_breaker_state",
                                         "Circuit breaker: 0 closed, 1 half-open, 2 open.", labels=["backend"]),
            "waiting": GaugeMetricFamily("swarm_router_backend_vllm_waiting",
                                         "vllm:num_requests_waiting at the last scrape.", labels=["backend"]),
            "kv": GaugeMetricFamily("swarm_router_backend_vllm_kv_usage",
                                    "vLLM KV-cache usage (0..1) at the last scrape.", labels=["backend"]),
        }
        for b in backends:
            families["in_flight"].add_metric([b.name], b.in_flight)
            families["limit"].add_metric([b.name], b.limit)
            families["healthy"].add_metric([b.name], 1.0 if b.healthy else 0.0)
            families["breaker"].add_metric([b.name], STATE_CODES[b.breaker.state])
            families["waiting"].add_metric([b.name], b.waiting)
            families["kv"].add_metric([b.name], b.kv_usage)
        yield from families.values()
        trips = CounterMetricFamily("swarm_router_breaker_trips", "Times the backend's breaker opened.",
                                    labels=["backend"])
        refused = CounterMetricFamily("swarm_router_breaker_refused_trips",
                                      "Times the pool-wide ejection budget kept the backend's breaker closed.",
                                      labels=["backend"])
        for b in backends:
            trips.add_metric([b.name], b.breaker.trips)
            refused.add_metric([b.name], b.breaker.refused_trips)
        yield trips
        yield refused
        yield GaugeMetricFamily("swarm_router_queue_depth", "Requests waiting for a slot.",
                                value=self.pool.queue_depth())


class BackendMetrics:
    """One backend's metric children, resolved once so the data path never calls ``labels()``."""

    __slots__ = ("_requests", "_statuses", "name", "retries", "stream_errors", "ttft")

    def __init__(self, metrics: RouterMetrics, name: str) -> None:
        self.name = name
        self._requests = metrics.requests
        self._statuses: dict[int, Counter] = {}
        self.retries = metrics.retries.labels(name)
        self.stream_errors = metrics.stream_errors.labels(name)
        self.ttft = metrics.ttft.labels(name)

    def count(self, status: int) -> None:
        child = self._statuses.get(status)
        if child is None:
            child = self._statuses[status] = self._requests.labels(self.name, str(status))
        child.inc()


class RouterMetrics:
    """All metric objects of one router app."""

    def __init__(self, pool: Pool) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("swarm_router_requests", "Completed requests by backend and status.",
                                ["backend", "status"], registry=self.registry)
        self.retries = Counter("swarm_router_retries", "Requests retried on another backend.",
                               ["backend"], registry=self.registry)
        self.stream_errors = Counter("swarm_router_stream_errors", "Streams the upstream broke after they started.",
                                     ["backend"], registry=self.registry)
        self.poison = Counter("swarm_router_poison_requests", "Requests that failed on two backends: not retried "
                              "further and charged to no breaker.", registry=self.registry)
        self.ttft = Histogram("swarm_router_ttft_seconds",
                              "Arrival to first response byte sent to the client (incl. queueing).",
                              ["backend"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.added = Histogram("swarm_router_added_latency_seconds",
                               "Time to first byte minus the upstream's own time to first byte.",
                               buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram("swarm_router_queue_wait_seconds", "Time spent waiting for a slot.",
                                    buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_PoolCollector(pool))
        self._backends = {name: BackendMetrics(self, name) for name in pool.backends}
        self._rejected: dict[int, Counter] = {}

    def backend(self, name: str) -> BackendMetrics:
        return self._backends[name]

    def count(self, backend: str, status: int) -> None:
        """Count a finished request; ``backend="none"`` for rejections before a backend was chosen."""
        if backend != "none":
            self._backends[backend].count(status)
            return
        child = self._rejected.get(status)
        if child is None:
            child = self._rejected[status] = self.requests.labels("none", str(status))
        child.inc()
