"""Routing strategies as pure functions over tiny fakes."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from swarm_runtime.router.routing import (
    RequestKey,
    affinity_key,
    load_score,
    make_load_strategy,
    round_robin,
)


@dataclass
class B:
    name: str
    in_flight: int = 0
    limit: int = 10
    waiting: float = 0.0
    kv_usage: float = 0.0
    ttft_ewma: float = 0.0
    salt: int = field(init=False)

    def __post_init__(self) -> None:
        self.salt = zlib.crc32(self.name.encode())


def key(affinity: int | None = None, seq: int = 0) -> RequestKey:
    return RequestKey(affinity, seq)


pick = make_load_strategy(slack=2)


def test_least_loaded_wins_without_affinity() -> None:
    a, b = B("a", in_flight=5), B("b", in_flight=2)
    assert pick([a, b], key()) is b


@pytest.mark.parametrize(("a", "b", "winner"), [
    (B("a", waiting=8), B("b", in_flight=3), "b"),  # vLLM's own queue counts
    (B("a", kv_usage=0.9), B("b", in_flight=3), "b"),  # a nearly full KV cache counts
    (B("a", in_flight=4, limit=40), B("b", in_flight=2, limit=4), "a"),  # relative to the cap
])
def test_score_combines_in_flight_waiting_and_kv(a: B, b: B, winner: str) -> None:
    chosen = pick([a, b], key())
    assert chosen is not None and chosen.name == winner
    assert load_score(a) != load_score(b)


def test_slower_backend_gets_proportionally_less() -> None:
    fast, slow = B("fast", ttft_ewma=0.02), B("slow", ttft_ewma=0.05)
    assert pick([slow, fast], key()) is fast
    fast.in_flight = 1  # cost 0.2 * 0.02 = 0.004 vs 0.1 * 0.05 = 0.005: still fast
    assert pick([slow, fast], key()) is fast
    fast.in_flight = 2  # 0.006 > 0.005: now the slow one is the better bet
    assert pick([slow, fast], key()) is slow


def test_latency_is_ignored_until_every_candidate_has_a_sample() -> None:
    fast, cold = B("fast", in_flight=1, ttft_ewma=0.02), B("cold")
    assert pick([fast, cold], key()) is cold


def test_affinity_is_sticky_and_spreads_keys() -> None:
    backends = [B("a"), B("b"), B("c")]
    for k in range(50):
        first = pick(backends, key(k))
        assert all(pick(backends, key(k)) is first for _ in range(3))
    spread = Counter(getattr(pick(backends, key(k)), "name", None) for k in range(300))
    assert set(spread) == {"a", "b", "c"} and min(spread.values()) > 60


def test_affinity_yields_when_the_preferred_backend_is_overloaded() -> None:
    a, b = B("a"), B("b")
    k = next(k for k in range(100) if pick([a, b], key(k)) is a)
    a.in_flight = 2  # within the slack: stays on the warm backend
    assert pick([a, b], key(k)) is a
    a.in_flight = 3  # beyond the slack: falls back to the least loaded
    assert pick([a, b], key(k)) is b
    a.in_flight, a.waiting = 0, 1  # vLLM queues on it: falls back even when idle for the router
    assert pick([a, b], key(k)) is b


def test_removing_a_backend_moves_only_its_keys() -> None:
    a, b, c = B("a"), B("b"), B("c")
    before = {k: pick([a, b, c], key(k)) for k in range(200)}
    after = {k: pick([a, c], key(k)) for k in range(200)}
    assert all(after[k] is before[k] for k in range(200) if before[k] is not b)


def test_round_robin_rotates_and_handles_empty() -> None:
    backends = [B("a"), B("b")]
    assert [getattr(round_robin(backends, key(seq=i)), "name", None) for i in range(4)] == ["a", "b", "a", "b"]
    assert round_robin([], key()) is None and pick([], key()) is None


def test_affinity_key_sources() -> None:
    assert affinity_key({"user": "alice", "prompt": "x"}, 10) == affinity_key({"user": "alice"}, 10)
    assert affinity_key({"prompt": "same prefix AAA"}, 11) == affinity_key({"prompt": "same prefix BBB"}, 11)
    chat1 = {"messages": [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "a"}]}
    chat2 = {"messages": [{"role": "system", "content": "You are kind."}, {"role": "user", "content": "b"}]}
    assert affinity_key(chat1, 20) == affinity_key(chat2, 20)
    assert affinity_key(chat1, 200) != affinity_key(chat2, 200)
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert affinity_key(parts, 50) is not None
    assert affinity_key({"messages": "nonsense"}, 10) is None and affinity_key({}, 10) is None
