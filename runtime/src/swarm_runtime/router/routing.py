"""Backend choice as pure functions of the candidates' state and the request's key.

Every strategy has the same signature, :data:`Strategy`; it receives only candidates that
are healthy, allowed by their breaker, serve the model and have a free slot, and returns
one of them (or None when the list is empty). The default strategy predicts each
candidate's time to first token for *this* request and takes the smallest (shortest
expected delay); see ``runtime/ROUTING.md``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "PRIOR",
    "BackendStats",
    "Rates",
    "RequestKey",
    "Strategy",
    "affinity_key",
    "affinity_slack_s",
    "estimate_prompt_tokens",
    "make_load_strategy",
    "predict_ttft",
    "prompt_text",
    "queue_wait",
    "rendezvous_rank",
    "round_robin",
    "warm_backend",
]

EXPLORE_EVERY = 8  # at most one decision in this many probes a backend whose rates are unknown
EXPLORE_MAX_IN_FLIGHT = 2  # ... and only while it has fewer requests than this in flight
UNMEASURED_PENALTY = 2.0  # an unmeasured backend is assumed this much slower than the slowest measured one
AFFINITY_MAX_REL = 0.25  # a warm prefix never costs more than this fraction of the best prediction
CHARS_PER_TOKEN = 4  # cheap prompt-size estimate: English BPE averages ~4 characters a token
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Rates:
    """A backend's service rates, learned online (see ``estimator.py``).

    ``base_s`` is the time to first token of a tiny prompt on an engine with a free sequence
    slot; ``prefill_s_per_token`` the extra time per prompt token (1 / prefill tokens/s);
    ``service_s`` how long a request holds one of the engine's ``slots`` (``inf`` until the
    engine was seen queueing, i.e. no known limit).
    """

    base_s: float
    prefill_s_per_token: float
    service_s: float
    slots: float = math.inf


PRIOR = Rates(base_s=0.05, prefill_s_per_token=1e-4, service_s=2.0)
"""What the strategy assumes about backends before any has been measured."""


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
    def queue(self) -> float: ...  # requests on the engine: the router's in-flight plus foreign load
    @property
    def pending_prefill(self) -> float: ...  # prompt tokens sent here that have no first token yet
    @property
    def slot_wait(self) -> float: ...  # seconds until the engine has a sequence slot for one more request
    @property
    def rates(self) -> Rates | None: ...  # None until measured
    def expected_ttft(self, prompt_tokens: int, slots_hint: float) -> float | None:
        """Engine-replay prediction (None until the step cost is known); ``slots_hint`` stands in
        for a sequence limit not yet observed."""


@dataclass(frozen=True, slots=True)
class RequestKey:
    """What a strategy may read about the request.

    ``affinity`` is a session/prefix hash, ``seq`` a sequence number, ``prompt_tokens`` the
    estimated prompt length, ``max_tokens`` the requested output cap (0 when unknown),
    ``blocks`` the prompt's chained block names (``prefixes.prompt_blocks``), ``warm`` the backend
    whose prefix cache may hold the most of it (the pool remembers what it sent where; see
    ``affinity.ttl_s``) and ``warm_tokens`` how many prompt tokens that cache would spare.
    """

    affinity: int | None
    seq: int
    prompt_tokens: int = 0
    max_tokens: int = 0
    warm: str | None = None
    warm_tokens: int = 0
    blocks: tuple[int, ...] = ()

    def prompt_on(self, backend: str) -> int:
        """Prompt tokens ``backend`` would compute: the whole prompt, less what its prefix cache spares."""
        return max(1, self.prompt_tokens - self.warm_tokens) if backend == self.warm else self.prompt_tokens


Strategy = Callable[[Sequence[BackendStats], RequestKey], BackendStats | None]


def queue_wait(queue: float, rates: Rates) -> float:
    """Expected wait for an engine sequence slot when ``queue`` requests are already there.

    Beyond ``slots`` a new request waits for ``queue - slots + 1`` completions, and a full
    engine completes ``slots / service_s`` requests a second.
    """
    excess = queue + 1 - rates.slots
    if excess <= 0:
        return 0.0
    return excess * rates.service_s / rates.slots


def predict_ttft(b: BackendStats, rates: Rates, prompt_tokens: int) -> float:
    """Predicted time to first token of a ``prompt_tokens`` request sent to ``b`` now.

    Wait for a slot, then its own prefill; with a free slot, also the prompt tokens sent
    before it that still prefill (behind a queue, those are part of the wait already).
    """
    wait = b.slot_wait
    ahead = b.pending_prefill if wait <= 0 else 0.0
    return wait + rates.base_s + (ahead + prompt_tokens) * rates.prefill_s_per_token


def _assumed(candidates: Sequence[BackendStats], measured: list[Rates | None]) -> list[Rates]:
    """Each candidate's rates; an unmeasured one is assumed :data:`UNMEASURED_PENALTY` times slower
    than the slowest measured one, so beyond its probes it only gets work the others would queue."""
    known = [r for r in measured if r is not None]
    if not known:
        fallback = PRIOR
    else:
        k = UNMEASURED_PENALTY
        fallback = Rates(k * max(r.base_s for r in known), k * max(r.prefill_s_per_token for r in known),
                         k * max(r.service_s for r in known), min(r.slots for r in known))
    return [r or fallback for r in measured]


def _replayed(candidates: Sequence[BackendStats], key: RequestKey) -> dict[str, float] | None:
    """Every candidate's engine-replay prediction, or None unless all have one (never mix two models)."""
    known = [r.slots for b in candidates if (r := b.rates) is not None and math.isfinite(r.slots)]
    hint = min(known, default=math.inf)
    out: dict[str, float] = {}
    for b in candidates:
        ttft = b.expected_ttft(key.prompt_on(b.name), hint)
        if ttft is None:
            return None
        out[b.name] = ttft
    return out


def _mix(x: int) -> int:
    """splitmix64 finaliser: spreads a 64-bit value for rendezvous hashing."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def rendezvous_rank(b: BackendStats, key: int) -> int:
    """Highest-random-weight score; stable across restarts because salts come from names."""
    return _mix((key << 32) ^ b.salt)


def warm_backend(candidates: Sequence[BackendStats], key: RequestKey) -> int | None:
    """Index of the candidate whose prefix cache is warm for this request (``key.warm``), if any."""
    return next((i for i, b in enumerate(candidates) if b.name == key.warm), None) if key.warm else None


def affinity_slack_s(b: BackendStats, rates: Rates, slack: int) -> float:
    """Seconds the warm backend ``b`` may add over the best prediction: ``slack`` requests' worth
    of its queueing delay (a request's slot holding time over its sequence limit, or over its
    router cap before the limit is known)."""
    return slack * rates.service_s / (rates.slots if math.isfinite(rates.slots) else max(b.limit, 1))


def make_load_strategy(slack: int) -> Strategy:
    """Shortest expected delay: the candidate with the smallest predicted time to first token.

    The prediction is each backend's engine replay (:meth:`BackendStats.expected_ttft`) once
    every candidate has one, else :func:`predict_ttft` from the learned rates.

    Before anything is measured every candidate gets the same prior rates, and each request
    already on a backend counts as one prior base latency (join-shortest-queue, prompt-size aware).
    Exploration: when some candidates have no measured rates and others do, one decision in
    :data:`EXPLORE_EVERY` goes to an unmeasured one holding fewer than
    :data:`EXPLORE_MAX_IN_FLIGHT` requests, so it gets measured without being flooded.
    Affinity: the warm backend (``key.warm``: the one whose prefix cache may hold the most of this
    prompt, else the one this session or prefix was last sent to) is predicted for the prompt less
    the tokens its cache spares (``key.warm_tokens``), and keeps the request while its prediction
    exceeds the best one by at most ``slack`` requests' worth of its queueing delay and at most
    :data:`AFFINITY_MAX_REL` of the best prediction; a warm prefix cache is worth a little delay,
    never a queue. A key with no warm backend goes by load alone, exact ties broken by rendezvous
    hashing (so idle backends share new sessions).
    """

    def pick(candidates: Sequence[BackendStats], key: RequestKey) -> BackendStats | None:
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        measured = [b.rates for b in candidates]
        any_measured = any(r is not None for r in measured)
        if key.seq % EXPLORE_EVERY == 0 and any_measured:
            cold = [b for b, r in zip(candidates, measured, strict=True)
                    if r is None and b.in_flight < EXPLORE_MAX_IN_FLIGHT]
            if cold:
                return min(cold, key=lambda b: (b.in_flight, b.name))
        assumed = _assumed(candidates, measured)
        rates = {b.name: r for b, r in zip(candidates, assumed, strict=True)}
        predicted = _replayed(candidates, key) if all(r is not None for r in measured) else None
        if predicted is None:
            predicted = {b.name: predict_ttft(b, rates[b.name], key.prompt_on(b.name)) for b in candidates}
        if not any_measured:  # cold start: no slot limit known, so count requests
            for b in candidates:
                predicted[b.name] += b.queue * PRIOR.base_s
        affinity = key.affinity
        best = min(candidates, key=lambda b: (predicted[b.name], b.queue,
                                              -rendezvous_rank(b, affinity) if affinity is not None else 0, b.name))
        warm = warm_backend(candidates, key)
        if warm is None or candidates[warm] is best:
            return best
        preferred = candidates[warm]
        allowance = min(affinity_slack_s(preferred, rates[preferred.name], slack),
                        AFFINITY_MAX_REL * predicted[best.name])
        return preferred if predicted[preferred.name] <= predicted[best.name] + allowance else best

    return pick


def round_robin(candidates: Sequence[BackendStats], key: RequestKey) -> BackendStats | None:
    """Load-blind rotation, kept as the baseline the benchmark compares against."""
    if not candidates:
        return None
    return candidates[key.seq % len(candidates)]


def estimate_prompt_tokens(raw_size: int, body: dict[str, object]) -> tuple[int, int]:
    """``(prompt tokens, max_tokens)`` guessed in O(1): body bytes / 4, and the output cap asked for.

    JSON overhead makes the guess a little high for tiny bodies; the strategy only compares
    backends, so a consistent overestimate costs nothing.
    """
    cap = body.get("max_tokens", body.get("max_completion_tokens"))
    max_tokens = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else 0
    return max(1, raw_size // CHARS_PER_TOKEN), max_tokens


def affinity_key(body: dict[str, object], prefix_chars: int, text: str | None = None) -> int | None:
    """Session key from ``user``, else the first ``prefix_chars`` of the prompt (so warm prefix
    caches get reused); ``text`` is :func:`prompt_text` of the body when the caller has it already."""
    user = body.get("user")
    if isinstance(user, str) and user:
        return zlib.crc32(b"u:" + user.encode())
    head = prompt_text(body, prefix_chars) if text is None else text
    if not head:
        return None
    return zlib.crc32(b"p:" + head[:prefix_chars].encode())


def prompt_text(body: dict[str, object], limit: int) -> str | None:
    """The first ``limit`` characters of what the model reads first: ``prompt`` (the first one of
    a list), else the ``messages`` as ``role:content`` lines; None without either."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt[:limit]
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0][:limit]
    messages = body.get("messages")
    if isinstance(messages, list):
        return _messages_prefix(messages, limit)
    return None


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
