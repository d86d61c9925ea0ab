"""The engine model's prefix cache and the session workload (``--sessions``): what affinity is measured on."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import Engine, EngineSpec, Seq
from routing.offline import Sessions, race
from routing.report import summarize
from routing.workload import SESSION_PREFIX, schedule


def first_token_s(engine: Engine, seq: Seq) -> float:
    engine.add(seq)
    elapsed = 0.0
    for _ in range(1000):
        elapsed += engine.plan()
        engine.finish()
        if seq.emitted:
            return elapsed
    raise AssertionError("no first token in 1000 steps")


def test_a_cached_prefix_is_not_prefilled_again_and_the_least_recent_is_evicted() -> None:
    engine = Engine(EngineSpec(prefix_cache_tokens=3000))
    cold = first_token_s(engine, Seq(2100, 1, prefix=7, prefix_tokens=2000))
    warm = first_token_s(engine, Seq(2100, 1, prefix=7, prefix_tokens=2000))
    assert warm < cold / 3  # only the 100 tokens after the prefix prefill
    # vLLM V1's counters: every prompt whole once its first token is out, the cached part as hits
    assert engine.prompt_tokens_total == 2100 + 2100
    assert (engine.prefix_cache_queries_total, engine.prefix_cache_hits_total) == (2100 + 2100, 2000)
    first_token_s(engine, Seq(1600, 1, prefix=8, prefix_tokens=1500))  # 3500 > 3000: prefix 7 goes
    assert list(engine.cached) == [8]
    assert first_token_s(engine, Seq(2100, 1, prefix=7, prefix_tokens=2000)) == cold
    assert list(engine.cached) == [7]  # 8 + 7 no longer fit together
    uncached = Engine(EngineSpec())
    first_token_s(uncached, Seq(2100, 1, prefix=7, prefix_tokens=2000))
    assert not uncached.cached  # no prefix caching unless the spec gives it room


def test_a_forked_engine_keeps_its_cache() -> None:
    engine = Engine(EngineSpec(prefix_cache_tokens=3000))
    first_token_s(engine, Seq(2100, 1, prefix=7, prefix_tokens=2000))
    ahead = engine.fork()
    assert ahead.cached == engine.cached and ahead.cached is not engine.cached


def test_session_turns_share_their_sessions_prefix() -> None:
    plan = schedule(rate=20, seconds=10, seed=4, sessions=5)
    prefixes: dict[int, int] = {}
    for req in plan:
        assert prefixes.setdefault(req.tag, req.prefix_tokens) == req.prefix_tokens
        assert SESSION_PREFIX[0] <= req.prefix_tokens < req.prompt_tokens
    assert len(prefixes) == 5
    assert all(r.prefix_tokens == 0 for r in schedule(rate=20, seconds=10, seed=4))  # the default mix shares nothing
    rng = random.Random(4)
    assert schedule(rate=20, seconds=10, seed=4)[0].at == rng.expovariate(20)  # the default mix is unchanged


def test_affinity_reuses_warm_prefixes_where_load_alone_does_not() -> None:
    # 30 sessions' prefixes (~60k tokens) do not fit one engine's cache (30k): affinity keeps each
    # session where it is cached. At 120 % of the engines' capacity without caching, only hits keep up.
    runs = {affinity: summarize(race("swarm-late", [1.0, 2.5], load=1.2, seconds=40, seed=1,
                                     sessions=Sessions(30, affinity=affinity)), "x2.5", 5, 40)
            for affinity in (True, False)}
    assert runs[True].ttft_p50 < 0.8 * runs[False].ttft_p50
    assert runs[True].goodput > runs[False].goodput
