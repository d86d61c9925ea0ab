"""Backend choice as pure functions of the candidates' state and the request's key.

Every strategy has the same signature, :data:`Strategy`; it receives only candidates that
are healthy, allowed by their breaker, serve the model and have a free slot, and returns
one of them (or None when the list is empty).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "BackendStats",
    "RequestKey",
    "Strategy",
    "affinity_key",
    "load_score",
    "make_load_strategy",
    "rendezvous_rank",
    "round_robin",
]

WAITING_WEIGHT = 1.0  # a request queued inside vLLM costs as much as one the router sent
KV_WEIGHT = 0.5  # a full KV cache adds half a cap's worth of load
_MASK = (1 << 64) - 1


class BackendStats(Protocol):
    """What a strategy may read about a backend."""

    @property
    def name(self) -> str: ...
    @property
    def salt(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def limit(self) -> int: ...
    @property
    def waiting(self) -> float: ...
    @property
    def kv_usage(self) -> float: ...
    @property
    def ttft_ewma(self) -> float: ...  # seconds; 0 until the first sample


@dataclass(frozen=True, slots=True)
class RequestKey:
    """What a strategy may read about the request: an affinity hash and a sequence number."""

    affinity: int | None
    seq: int


Strategy = Callable[[Sequence[BackendStats], RequestKey], BackendStats | None]


def load_score(b: BackendStats) -> float:
    """Lower is better: the router's in-flight share of the cap, vLLM's queue, KV pressure."""
    return (b.in_flight + WAITING_WEIGHT * b.waiting) / b.limit + KV_WEIGHT * b.kv_usage


def _cost(b: BackendStats, with_latency: bool) -> float:
    """Expected wait: load (counting the request being placed) scaled by the backend's recent TTFT.

    Like Finagle's peak-EWMA balancer: a GPU that answers 2.5x slower gets proportionally fewer
    requests, and one whose TTFT climbs because it queues sheds load before vLLM's queue shows
    up in the next scrape. Without latency samples for every candidate, load alone decides.
    """
    load = load_score(b) + 1.0 / b.limit
    return load * b.ttft_ewma if with_latency else load


def _mix(x: int) -> int:
    """splitmix64 finaliser: spreads a 64-bit value for rendezvous hashing."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def rendezvous_rank(b: BackendStats, key: int) -> int:
    """Highest-random-weight score; stable across restarts because salts come from names."""
    return _mix((key << 32) ^ b.salt)


def make_load_strategy(slack: int) -> Strategy:
    """Least-loaded choice, preferring the affinity key's rendezvous winner while it is warm but not busy.

    The preferred backend keeps the request while vLLM reports no queue on it and its score
    exceeds the best one by at most ``slack`` requests' worth of its cap (KV pressure counts);
    beyond that a prefix-cache hit is worth less than the queueing it would cost.
    """

    def pick(candidates: Sequence[BackendStats], key: RequestKey) -> BackendStats | None:
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        timed = all(b.ttft_ewma > 0 for b in candidates)
        best = min(candidates, key=lambda b: _cost(b, timed))
        if key.affinity is None:
            return best
        affinity = key.affinity
        preferred = max(candidates, key=lambda b: rendezvous_rank(b, affinity))
        if preferred is best or preferred.waiting > 0:
            return best if preferred is not best else preferred
        allowance = slack / preferred.limit * (preferred.ttft_ewma if timed else 1.0)
        return preferred if _cost(preferred, timed) <= _cost(best, timed) + allowance else best

    return pick


def round_robin(candidates: Sequence[BackendStats], key: RequestKey) -> BackendStats | None:
    """Load-blind rotation, kept as the baseline the benchmark compares against."""
    if not candidates:
        return None
    return candidates[key.seq % len(candidates)]


def affinity_key(body: dict[str, object], prefix_chars: int) -> int | None:
    """Session key from ``user``, else a prefix of the prompt (so warm prefix caches get reused)."""
    user = body.get("user")
    if isinstance(user, str) and user:
        return zlib.crc32(b"u:" + user.encode())
    prompt = body.get("prompt")
    text: str | None = None
    if isinstance(prompt, str):
        text = prompt[:prefix_chars]
    elif isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        text = prompt[0][:prefix_chars]
    else:
        messages = body.get("messages")
        if isinstance(messages, list):
            text = _messages_prefix(messages, prefix_chars)
    if not text:
        return None
    return zlib.crc32(b"p:" + text.encode())


def _messages_prefix(messages: list[object], limit: int) -> str:
    parts: list[str] = []
    size = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict)
                              and isinstance(p.get("text", ""), str))
        if not isinstance(content, str):
            continue
        parts.append(f"{message.get('role', '')}:{content}\n")
        size += len(parts[-1])
        if size >= limit:
            break
    return "".join(parts)[:limit]
