"""The offline race's look-ahead ceiling: exact TTFTs on the engine model, and a rollout that sees what follows."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import PRIORITIES, Engine, EngineSpec, Seq
from routing.lookahead import COSTS, exact_ttft, joint_release, rollout_choice, sampled_futures

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


def test_joint_release_gives_the_fast_gpu_the_long_prompt_and_the_slow_one_the_short() -> None:
    waiting = [(0.0, 100, 30), (0.0, 3000, 30)]  # the short one came first
    states = idle()
    placed: dict[int, int] = {}
    while len(placed) < len(waiting):
        left = [k for k in range(len(waiting)) if k not in placed]
        k, backend = joint_release(states, 0.0, [waiting[i] for i in left], [0, 1], COSTS["square"])
        placed[left[k]] = backend
        states[backend][0].add(Seq(*waiting[left[k]][1:]))
    assert placed == {0: 1, 1: 0}
    # greedy in arrival order would have put the short prompt on the idle fast GPU first
    assert min(range(2), key=lambda b: exact_ttft(*idle()[b], 100, 0.0)) == 0


def test_a_lone_waiting_request_goes_where_its_first_token_comes_soonest_room_or_not() -> None:
    assert joint_release(idle(), 0.0, [(0.0, 3000, 30)], [1], COSTS["square"]) == (0, 0)


def test_several_waiting_are_released_only_to_backends_with_room() -> None:
    waiting = [(0.0, 100, 30), (0.0, 3000, 30)]
    assert joint_release(idle(), 0.0, waiting, [1], COSTS["square"])[1] == 1


@pytest.mark.parametrize(("order", "expected"), [
    (None, [100, 3000, 200]),  # first come, first served
    ("short-first", [100, 200, 3000]),
    ("long-first", [3000, 100, 200]),
])
def test_vllm_priority_orders_the_waiting_queue_ties_by_arrival(order: str | None, expected: list[int]) -> None:
    engine = Engine(EngineSpec(priority=PRIORITIES[order] if order else None))
    for prompt in (100, 3000, 200):
        engine.add(Seq(prompt, 10))
    assert [s.prompt_tokens for s in engine.waiting] == expected
    assert [s.prompt_tokens for s in engine.fork().waiting] == expected
