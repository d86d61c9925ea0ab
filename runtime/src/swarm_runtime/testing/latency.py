"""Latency and histogram models behind the fake vLLM server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["E2E_BUCKETS", "ITL_BUCKETS", "TTFT_BUCKETS", "FakeHistogram", "LatencyFn", "LatencyModel"]

LatencyFn = Callable[[int], tuple[float, float]]

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)


@dataclass(frozen=True)
class LatencyModel:
    """How long the fake takes, as a function of how many sequences it is running.

    Beyond ``knee`` running sequences both delays grow by ``slope`` (a fraction) per extra
    sequence, so throughput saturates and latency climbs, like a real GPU batch. Beyond
    ``max_num_seqs`` requests wait (reported as ``num_requests_waiting``). ``fn`` overrides
    the formula: ``fn(running) -> (ttft_s, per_token_s)``. ``capacity_fn() -> int`` is how
    many sequences fit in the KV cache right now (it may change, e.g. when prompts get
    longer): beyond it requests wait in arrival order, and KV usage is ``running / capacity``.
    """

    ttft_s: float = 0.0
    per_token_s: float = 0.0
    tokens: int = 16
    max_num_seqs: int | None = None
    knee: int | None = None
    slope: float | None = None
    fn: LatencyFn | None = None
    capacity_fn: Callable[[], int] | None = None

    def timing(self, running: int) -> tuple[float, float]:
        """``(ttft_s, per_token_s)`` while ``running`` sequences share the engine."""
        if self.fn is not None:
            return self.fn(running)
        factor = 1.0
        if self.knee is not None and self.slope is not None and running > self.knee:
            factor += self.slope * (running - self.knee)
        return self.ttft_s * factor, self.per_token_s * factor

    def capacity(self) -> int:
        """Sequences the engine can hold now (the KV cache's size in sequences)."""
        if self.capacity_fn is not None:
            return max(1, self.capacity_fn())
        return self.max_num_seqs or 64

    def kv_usage(self, running: int) -> float:
        return min(1.0, running / self.capacity())


class FakeHistogram:
    """Cumulative buckets rendered in Prometheus text format, like vLLM's histograms."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str) -> Iterator[str]:
        yield f"# TYPE {name} histogram"
        cumulative = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            cumulative += n
            yield f'{name}_bucket{{le="{bound}",{labels}}} {float(cumulative)}'
        yield f'{name}_bucket{{le="+Inf",{labels}}} {float(self.count)}'
        yield f"{name}_sum{{{labels}}} {self.sum}"
        yield f"{name}_count{{{labels}}} {float(self.count)}"
