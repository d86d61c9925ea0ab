"""The offline race's look-ahead ceiling: exact TTFTs on the engine model, and a rollout that sees what follows."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import Engine, EngineSpec, Seq
from routing.lookahead import COSTS, exact_ttft, rollout_choice, sampled_futures

FAST, SLOW = EngineSpec(), EngineSpec(slowdown=2.5)


def idle() -> list[tuple[Engine, float | None]]:
    return [(Engine(FAST), None), (Engine(SLOW), None)]


def test_exact_ttft_on_an_idle_engine_is_one_step() -> None:
    step = FAST.step_base_s + FAST.step_per_seq_s + 100 * FAST.prefill_per_token_s
    assert exact_ttft(Engine(FAST), None, 100, 0.0) == pytest.approx(step)


def test_exact_ttft_counts_the_step_under_way_and_leaves_the_engine_alone() -> None:
    engine = Engine(FAST)
    engine.add(Seq(2000, 10))
    first = engine.plan()  # the first 512-token chunk, under way until `first`
    waited = exact_ttft(engine, first, 100, first / 2)
    assert waited > first / 2 + FAST.step_base_s  # the step under way, then at least one more
    assert len(engine.running) == 1 and engine.running[0].prefilled == 0  # a copy ran, not the engine


def test_without_a_future_the_rollout_is_the_greedy_choice() -> None:
    states = idle()
    for prompt in (100, 3000):
        greedy = min(range(2), key=lambda b: exact_ttft(*states[b], prompt, 0.0))
        assert rollout_choice(states, 0.0, (0.0, prompt, 20), [[]], COSTS["square"]) == greedy == 0


def test_a_burst_of_long_prompts_just_behind_moves_a_short_one_to_the_slow_gpu() -> None:
    burst = [(0.001 * k, 3000, 30) for k in range(1, 9)]
    states = idle()
    assert rollout_choice(states, 0.0, (0.0, 100, 30), [[]], COSTS["square"]) == 0  # alone: the fast GPU
    assert rollout_choice(states, 0.0, (0.0, 100, 30), [burst], COSTS["square"]) == 1  # the burst needs it


def test_sampled_futures_are_poisson_within_the_window() -> None:
    futures = sampled_futures(random.Random(3), rate=20.0, now=10.0, horizon=2.0, count=200)
    counts = [len(f) for f in futures]
    assert 36 < sum(counts) / len(counts) < 44  # mean 40 arrivals
    assert all(10.0 < at < 12.0 for f in futures for at, _, _ in f)
    assert all(f == sorted(f) for f in futures)
