"""Parse vLLM's Prometheus ``/metrics`` text into the few numbers the router and autotuner use.

vLLM renames metrics over releases (deprecated names are hidden one minor release later and
removed the next), so every field accepts an ordered list of names: the first name present
in the scrape wins, which avoids double counting while both generations are exported.
Values are summed across label sets (``model_name``, ``engine``), except KV-cache usage,
a per-engine fraction, where the maximum is kept. Garbage never raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["GAUGE_NAMES", "HISTOGRAM_NAMES", "Histogram", "VllmMetrics", "parse_vllm_metrics"]


@dataclass(frozen=True)
class Histogram:
    """A cumulative Prometheus histogram: ``(le, cumulative count)`` ascending, ``+Inf`` last."""

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float

    def minus(self, earlier: Histogram) -> Histogram:
        """The observations made between ``earlier`` and this scrape (for windowed stats).

        A counter reset (the server restarted) yields ``self`` unchanged.
        """
        if self.count < earlier.count:
            return self
        before = dict(earlier.buckets)
        buckets = tuple((le, max(0.0, cum - before.get(le, 0.0))) for le, cum in self.buckets)
        return Histogram(buckets, max(0.0, self.sum - earlier.sum), self.count - earlier.count)

    def quantile(self, q: float) -> float | None:
        """Prometheus ``histogram_quantile`` semantics: linear interpolation inside the bucket.

        Returns None when there are no observations. A quantile landing in the ``+Inf``
        bucket returns the highest finite bound, as Prometheus does.
        """
        if self.count <= 0 or not self.buckets:
            return None
        q = min(1.0, max(0.0, q))
        total = self.buckets[-1][1]
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for le, cum in self.buckets:
            if cum >= rank:
                if math.isinf(le):
                    return lower_bound
                width = cum - lower_count
                if width <= 0:
                    return le
                return lower_bound + (le - lower_bound) * (rank - lower_count) / width
            lower_bound, lower_count = le, cum
        return lower_bound

    def mean(self) -> float | None:
        """Average observation, or None when empty."""
        return self.sum / self.count if self.count > 0 else None


@dataclass(frozen=True)
class VllmMetrics:
    """One scrape of a vLLM server, summed over model and engine label sets."""

    running: float
    waiting: float
    kv_cache_usage: float  # 0..1
    preemptions_total: float
    prompt_tokens_total: float
    generation_tokens_total: float
    ttft: Histogram | None
    inter_token: Histogram | None
    e2e: Histogram | None
    queue_time: Histogram | None
    # prompt tokens found in the prefix cache at admission (vLLM V1; 0 where not exported)
    prefix_cache_hits_total: float = 0.0


# Field -> accepted sample names, newest first.
GAUGE_NAMES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "preemptions_total": ("vllm:num_preemptions_total", "vllm:num_preemptions"),
    "prompt_tokens_total": ("vllm:prompt_tokens_total", "vllm:prompt_tokens"),
    "generation_tokens_total": ("vllm:generation_tokens_total", "vllm:generation_tokens"),
    "prefix_cache_hits_total": ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits"),
}
HISTOGRAM_NAMES: dict[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "inter_token": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds",),
    "queue_time": ("vllm:request_queue_time_seconds",),
}
_SCALARS = frozenset(n for names in GAUGE_NAMES.values() for n in names)
_MAX_SCALARS = frozenset(GAUGE_NAMES["kv_cache_usage"])
_HISTOS = frozenset(n for names in HISTOGRAM_NAMES.values() for n in names)
_SUFFIXES = ("_bucket", "_sum", "_count")


class _Acc:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets: dict[float, float] = {}
        self.sum = 0.0
        self.count = 0.0


def _label(labels: str, key: str) -> str | None:
    """Value of one label in ``a="x",b="y"``; label values here never hold quotes."""
    start = labels.find(key + '="')
    while start > 0 and labels[start - 1] not in ", {":
        start = labels.find(key + '="', start + 1)
    if start < 0:
        return None
    start += len(key) + 2
    end = labels.find('"', start)
    return labels[start:end] if end >= 0 else None


def _split(line: str) -> tuple[str, str, float] | None:
    """``(name, labels, value)`` of one sample line, or None if it is not one."""
    brace = line.find("{")
    if brace >= 0:
        close = line.rfind("}")
        if close < brace:
            return None
        name, labels, rest = line[:brace], line[brace + 1 : close], line[close + 1 :]
    else:
        parts = line.split(None, 1)
        if len(parts) != 2:
            return None
        name, labels, rest = parts[0], "", parts[1]
    fields = rest.split()
    if not fields:
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return name.strip(), labels, value


def parse_vllm_metrics(text: str) -> VllmMetrics:
    """Parse a Prometheus text exposition from vLLM (current or deprecated metric names).

    Missing metrics read as 0 (scalars) or None (histograms); malformed lines are skipped.
    """
    scalars: dict[str, float] = {}
    histos: dict[str, _Acc] = {}
    for raw in text.splitlines():
        if not raw.startswith("vllm:"):
            continue
        sample = _split(raw)
        if sample is None:
            continue
        name, labels, value = sample
        if name in _SCALARS:
            # Usage is a fraction per engine: the fullest engine is what limits admission.
            previous = scalars.get(name)
            if previous is None:
                scalars[name] = value
            elif name in _MAX_SCALARS:
                scalars[name] = max(previous, value)
            else:
                scalars[name] = previous + value
            continue
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in _HISTOS:
                acc = histos.setdefault(name[: -len(suffix)], _Acc())
                if suffix == "_sum":
                    acc.sum += value
                elif suffix == "_count":
                    acc.count += value
                else:
                    le_text = _label(labels, "le")
                    if le_text is None:
                        break
                    try:
                        le = float(le_text)
                    except ValueError:
                        break
                    acc.buckets[le] = acc.buckets.get(le, 0.0) + value
                break

    def scalar(field: str) -> float:
        for name in GAUGE_NAMES[field]:
            if name in scalars:
                return scalars[name]
        return 0.0

    def histogram(field: str) -> Histogram | None:
        for name in HISTOGRAM_NAMES[field]:
            acc = histos.get(name)
            if acc is not None and acc.buckets:
                buckets = tuple(sorted(acc.buckets.items()))
                if not math.isinf(buckets[-1][0]):
                    buckets = (*buckets, (math.inf, max(acc.count, buckets[-1][1])))
                return Histogram(buckets, acc.sum, acc.count or buckets[-1][1])
        return None

    return VllmMetrics(
        running=scalar("running"),
        waiting=scalar("waiting"),
        kv_cache_usage=scalar("kv_cache_usage"),
        preemptions_total=scalar("preemptions_total"),
        prompt_tokens_total=scalar("prompt_tokens_total"),
        generation_tokens_total=scalar("generation_tokens_total"),
        ttft=histogram("ttft"),
        inter_token=histogram("inter_token"),
        e2e=histogram("e2e"),
        queue_time=histogram("queue_time"),
        prefix_cache_hits_total=scalar("prefix_cache_hits_total"),
    )
