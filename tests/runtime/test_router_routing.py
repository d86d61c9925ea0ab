"""Routing strategies as pure functions over tiny fakes: tables of states and the expected choice."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass, field

import pytest
from swarm_runtime.router.routing import (
    AFFINITY_MAX_REL,
    EXPLORE_EVERY,
    EXPLORE_MAX_IN_FLIGHT,
    Rates,
    RequestKey,
    affinity_key,
    estimate_prompt_tokens,
    make_load_strategy,
    predict_ttft,
    prompt_text,
    queue_wait,
    rendezvous_rank,
    round_robin,
)

# An RTX 4090-like and an RTX 3080-like backend: 2.5x apart in every rate, 8 sequence slots each.
FAST = Rates(base_s=0.02, prefill_s_per_token=1 / 25_000, service_s=1.0, slots=8)
SLOW = Rates(base_s=0.05, prefill_s_per_token=1 / 10_000, service_s=2.5, slots=8)


@dataclass
class B:
    """A backend as the strategy sees it; the slot wait follows the closed-form queue model."""

    name: str
    rates: Rates | None = None
    in_flight: int = 0
    external: float = 0.0
    pending_prefill: float = 0.0
    limit: int = 64
    replay: float | None = None  # what the engine replay predicts for any prompt (None: not yet known)
    hints: list[float] = field(default_factory=list)
    salt: int = field(init=False)

    def __post_init__(self) -> None:
        self.salt = zlib.crc32(self.name.encode())

    @property
    def queue(self) -> float:
        return self.in_flight + self.external

    def expected_ttft(self, prompt_tokens: int, slots_hint: float) -> float | None:
        self.hints.append(slots_hint)
        return self.replay

    @property
    def slot_wait(self) -> float:
        return queue_wait(self.queue, self.rates) if self.rates else 0.0


def key(affinity: int | None = None, seq: int = 1, prompt: int = 100, warm: str | None = None) -> RequestKey:
    return RequestKey(affinity, seq, prompt, 32, warm)


pick = make_load_strategy(slack=2)


def name_of(chosen: object) -> str:
    assert isinstance(chosen, B)
    return chosen.name


@pytest.mark.parametrize(("fast", "slow", "prompt", "winner"), [
    (B("fast", FAST), B("slow", SLOW), 100, "fast"),  # both idle: the faster GPU
    (B("fast", FAST, in_flight=9), B("slow", SLOW), 100, "slow"),  # fast queues 0.25 s: a short prompt goes slow
    (B("fast", FAST, in_flight=9), B("slow", SLOW), 4000, "fast"),  # ... a long one still prefills faster there
    (B("fast", FAST, pending_prefill=6000), B("slow", SLOW), 100, "slow"),  # a long prefill ahead delays a short one
    (B("fast", FAST, external=12), B("slow", SLOW, in_flight=2), 100, "slow"),  # foreign load counts
    (B("fast", FAST, in_flight=12), B("slow", SLOW, in_flight=9), 100, "fast"),  # both queue: cheaper queue wins
])
def test_smallest_predicted_time_to_first_token_wins(fast: B, slow: B, prompt: int, winner: str) -> None:
    chosen = name_of(pick([slow, fast], key(prompt=prompt)))
    assert chosen == winner
    loser = slow if winner == "fast" else fast
    ours = fast if winner == "fast" else slow
    assert predict_ttft(ours, ours.rates or FAST, prompt) < predict_ttft(loser, loser.rates or FAST, prompt)


def test_the_engine_replay_decides_once_every_candidate_has_one() -> None:
    fast, slow = B("fast", FAST, replay=0.30), B("slow", SLOW, replay=0.20)
    assert predict_ttft(fast, FAST, 100) < predict_ttft(slow, SLOW, 100)  # the closed form says fast ...
    assert pick([fast, slow], key()) is slow  # ... the replay says slow, and the replay wins
    fast.replay = None  # one without a replay: both fall back to the closed form, never a mix
    assert pick([fast, slow], key()) is fast


def test_the_replay_gets_the_smallest_known_slot_limit_as_a_hint() -> None:
    a = B("a", FAST, replay=0.1)
    b = B("b", Rates(0.02, 1e-5, 1.0), replay=0.1)  # never seen queueing
    c = B("c", Rates(0.02, 1e-5, 1.0, slots=16), replay=0.1)
    pick([a, b, c], key())
    assert a.hints == b.hints == c.hints == [8]
    b.hints.clear()
    pick([b, b], key())
    assert b.hints == [math.inf, math.inf]  # no peer knows a limit: no hint


def test_queue_wait_counts_completions_needed_for_a_slot() -> None:
    assert queue_wait(7, FAST) == 0.0  # the 8th request gets the last free slot
    assert queue_wait(8, FAST) == pytest.approx(1.0 / 8)  # waits for one of 8 to finish
    assert queue_wait(11, SLOW) == pytest.approx(4 * 2.5 / 8)
    assert math.isinf(Rates(0.1, 1e-4, 1.0).slots)
    assert queue_wait(1000, Rates(0.1, 1e-4, 1.0)) == 0.0  # no known slot limit: no wait


@pytest.mark.parametrize("burst", [20, 60, 100])
def test_a_burst_splits_near_the_capacity_ratio(burst: int) -> None:
    fast, slow = B("fast", FAST), B("slow", SLOW)
    for seq in range(1, burst + 1):  # nothing completes and no scrape arrives during the burst
        chosen = pick([fast, slow], key(seq=seq, prompt=50))
        assert isinstance(chosen, B)
        chosen.in_flight += 1
        chosen.pending_prefill += 50
    capacity_share = (FAST.slots / FAST.service_s) / (FAST.slots / FAST.service_s + SLOW.slots / SLOW.service_s)
    assert fast.in_flight + slow.in_flight == burst
    if burst >= 60:  # once both queue, the split follows the service rates
        assert fast.in_flight / burst == pytest.approx(capacity_share, abs=0.08)
    assert slow.in_flight >= 3  # never herds everything onto the fast GPU
    assert abs(fast.slot_wait - slow.slot_wait) <= SLOW.service_s / SLOW.slots + 1e-9  # delays end up level


def test_at_equal_predicted_delay_affinity_wins() -> None:
    a, b = B("a", FAST), B("b", FAST)
    for warm in (a, b):
        for k in range(20):
            assert pick([a, b], key(k, warm=warm.name)) is warm
            assert pick([b, a], key(k, warm=warm.name)) is warm  # whatever the candidate order
    # a key warm nowhere (never seen, or forgotten) has nothing to prefer: the exact tie is broken
    # by rendezvous hashing, the same way for every candidate order, so new sessions spread
    for k in range(40):
        assert pick([a, b], key(k)) is pick([b, a], key(k)) is max((a, b), key=lambda x: rendezvous_rank(x, k))
    spread = Counter(name_of(pick([a, b], key(k))) for k in range(200))
    assert min(spread.values()) > 60
    assert all(pick([a, b], key(None, seq=s)) is a for s in range(1, 5))  # no key: a stable tie-break


def test_a_key_warm_nowhere_goes_by_load_alone() -> None:
    a, b = B("a", FAST), B("b", FAST)
    a.pending_prefill = 100  # 4 ms more on a: within any affinity allowance, but a is not warm
    assert all(pick([a, b], key(k)) is b for k in range(40))
    assert pick([a, b], key(7, warm="gone")) is b  # warm on a backend that is no candidate


def test_the_warm_backend_is_predicted_for_the_part_of_the_prompt_its_cache_does_not_hold() -> None:
    a, b = B("a", FAST), B("b", FAST)
    a.pending_prefill = 2000  # 80 ms of prefill ahead on a
    long = RequestKey(5, 1, 3000, 32, warm="a")
    assert pick([a, b], long) is b  # 0.22 s against 0.14 s: far beyond the affinity allowance
    cached = RequestKey(5, 1, 3000, 32, warm="a", warm_tokens=2900)
    assert pick([a, b], cached) is a  # a computes 100 tokens behind 2000: 0.10 s against 0.14 s
    assert pick([b, a], cached) is a
    assert cached.prompt_on("a") == 100 and cached.prompt_on("b") == 3000


def test_affinity_yields_beyond_the_slack() -> None:
    a, b = B("a", FAST), B("b", FAST)
    warm_a = key(3, warm="a")
    a.in_flight = 9  # queues 0.25 s; allowance min(2 x 1/8 s, 25 % of b's prediction) is ~6 ms
    assert pick([a, b], warm_a) is b
    a.in_flight, a.pending_prefill = 0, 100  # 4 ms of extra prefill ahead: within the allowance
    assert predict_ttft(a, FAST, 100) - predict_ttft(b, FAST, 100) <= AFFINITY_MAX_REL * predict_ttft(b, FAST, 100)
    assert pick([a, b], warm_a) is a


def test_affinity_never_sends_a_short_prompt_to_a_much_slower_gpu() -> None:
    fast, slow = B("fast", FAST), B("slow", SLOW)
    # warm on the slow GPU: 50 ms there against 20 ms is beyond the allowance
    assert all(pick([fast, slow], key(k, warm="slow")) is fast for k in range(50))


def test_an_unmeasured_backend_gets_a_bounded_exploratory_share() -> None:
    fast, cold = B("fast", FAST), B("cold")
    chosen = Counter(name_of(pick([fast, cold], key(seq=s))) for s in range(1, 81))
    assert chosen["cold"] == 80 // EXPLORE_EVERY  # one probe in EXPLORE_EVERY while fast is idle
    cold.in_flight = EXPLORE_MAX_IN_FLIGHT  # probes in flight: no more exploration
    assert all(pick([fast, cold], key(seq=s)) is fast for s in range(0, 80, EXPLORE_EVERY))
    fast.in_flight, cold.in_flight = 30, 0  # the measured one queues: the cold one, assumed no faster, helps
    assert pick([fast, cold], key(seq=1)) is cold


def test_without_any_measurement_the_shortest_queue_wins() -> None:
    a, b = B("a", in_flight=3), B("b", in_flight=1, pending_prefill=50)
    assert pick([a, b], key()) is b
    a.pending_prefill, b.pending_prefill = 0, 20_000  # a long prefill queued on b counts even unmeasured
    assert pick([a, b], key()) is a


def test_removing_a_backend_moves_only_its_keys() -> None:
    a, b, c = B("a", FAST), B("b", FAST), B("c", FAST)
    before = {k: pick([a, b, c], key(k)) for k in range(200)}
    after = {k: pick([a, c], key(k)) for k in range(200)}
    assert all(after[k] is before[k] for k in range(200) if before[k] is not b)


def test_round_robin_rotates_and_empty_lists_give_none() -> None:
    backends = [B("a"), B("b")]
    assert [name_of(round_robin(backends, key(seq=i))) for i in range(4)] == ["a", "b", "a", "b"]
    assert round_robin([], key()) is None and pick([], key()) is None
    assert pick([backends[1]], key()) is backends[1]


@pytest.mark.parametrize(("body", "size", "expected"), [
    ({"prompt": "x" * 400, "max_tokens": 64}, 420, (105, 64)),
    ({"messages": [], "max_completion_tokens": 9}, 40, (10, 9)),
    ({"prompt": "", "max_tokens": True}, 2, (1, 0)),  # a bool is not a token count
    ({"prompt": "hi", "max_tokens": -5}, 30, (7, 0)),
])
def test_prompt_size_is_estimated_from_the_body_size(body: dict[str, object], size: int,
                                                       expected: tuple[int, int]) -> None:
    assert estimate_prompt_tokens(size, body) == expected


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
    long = {"messages": [{"role": "system", "content": "S" * 600}, {"role": "user", "content": "q"}]}
    assert affinity_key(long, 256, prompt_text(long, 256 * 8)) == affinity_key(long, 256)  # text given once
