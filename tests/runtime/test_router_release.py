"""Late binding's release: which held request goes to which engine with room (``router/release.py``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from swarm_runtime.router.release import GREEDY, RELEASE_CANDIDATES, Held, joint_release, next_release
from swarm_runtime.router.twin import EngineView, Job, StepModel

FAST = StepModel(0.02, 4e-5, 512)
SLOW = StepModel(0.05, 1e-4, 512)  # 2.5x slower per step
LONG, SHORT = 3000, 100


def busy(model: StepModel, steps_left: float) -> EngineView:
    """An engine with one sequence slot, held by a request that finishes in ``steps_left`` steps."""
    return EngineView([Job(0.0, steps_left)], 1, model)


def idle(model: StepModel) -> EngineView:
    return EngineView([], 1, model)


def test_a_short_prompt_takes_the_slow_gpus_room_when_a_long_one_waits_for_the_fast_gpu() -> None:
    # Only the slow GPU has room. First come, first served would give it the long prompt
    # (3000 tokens: ~0.35 s of prefill there); holding the long one for the fast GPU, which frees
    # in 3 steps, and sending the short one now is cheaper for both.
    views = [busy(FAST, 3), idle(SLOW)]
    held = [Held(0.0, LONG, 32), Held(0.0, SHORT, 32)]
    assert joint_release(views, held, rooms=[1]) == (1, 1)


def test_the_oldest_goes_first_when_sizes_do_not_argue_otherwise() -> None:
    views = [busy(FAST, 3), idle(SLOW)]
    held = [Held(0.5, SHORT, 32), Held(0.0, SHORT, 32)]
    assert joint_release(views, held, rooms=[1]) == (0, 1)


def test_an_engine_a_request_already_failed_on_is_not_released_to() -> None:
    views = [idle(FAST), idle(SLOW)]
    assert joint_release(views, [Held(0.0, SHORT, 32, excluded=frozenset({0}))], rooms=[0]) is None
    assert joint_release(views, [Held(0.0, SHORT, 32, excluded=frozenset({0}))], rooms=[0, 1]) == (0, 1)


def test_at_equal_cost_a_held_request_goes_to_its_warm_engine() -> None:
    views = [idle(FAST), idle(FAST)]
    cold = [Held(0.2, SHORT, 32), Held(0.0, SHORT, 32)]
    assert joint_release(views, cold, rooms=[0, 1]) == (0, 0)
    warm = [Held(0.2, SHORT, 32, warm=1), Held(0.0, SHORT, 32)]
    assert joint_release(views, warm, rooms=[0, 1]) == (0, 1)
    assert joint_release(views, [Held(0.2, SHORT, 32), Held(0.0, SHORT, 32, warm=1)], rooms=[0, 1]) == (1, 1)


def test_a_warm_engine_wins_within_its_allowance_and_loses_beyond_it() -> None:
    ahead = EngineView([Job(400.0, 8.0)], 2, FAST)  # 400 prompt tokens still prefilling: ~16 ms more
    views = [idle(FAST), ahead]
    held = [Held(0.2, SHORT, 32, warm=1, warm_slack_s=0.05), Held(0.0, SHORT, 32)]
    assert joint_release(views, held, rooms=[0, 1]) == (0, 1)  # 16 ms is within min(50 ms, 25 %)
    tight = [Held(0.2, SHORT, 32, warm=1, warm_slack_s=0.005), Held(0.0, SHORT, 32)]
    assert joint_release(views, tight, rooms=[0, 1]) == (0, 0)
    queued = [busy(FAST, 40), idle(FAST)]  # the warm engine's slot frees in 40 steps: a queue, not a tie
    assert joint_release(queued, [Held(0.2, SHORT, 32, warm=0, warm_slack_s=0.05), Held(0.0, SHORT, 32)],
                         rooms=[0, 1]) == (0, 1)


def test_a_held_long_prompt_whose_prefix_an_engine_caches_waits_for_that_engine() -> None:
    # Only the slow GPU has room; the fast one frees in 3 steps. Without a cached prefix the long
    # prompt waits for the fast GPU (first test). If the slow GPU caches all but 100 of its tokens,
    # sending it there now is cheapest.
    views = [busy(FAST, 3), idle(SLOW)]
    assert joint_release(views, [Held(0.0, LONG, 32), Held(0.0, SHORT, 32)], rooms=[1]) == (1, 1)
    cached = Held(0.0, LONG, 32, warm=1, warm_tokens=LONG - 100)
    assert cached.prompt_on(1) == 100 and cached.prompt_on(0) == LONG
    assert joint_release(views, [cached, Held(0.0, SHORT, 32)], rooms=[1]) == (0, 1)


def test_a_long_queue_is_decided_within_bounds() -> None:
    views = [busy(FAST, 3), idle(SLOW)]
    held = [Held(i * 0.01, LONG if i % 4 == 0 else SHORT, 32) for i in range(500)]
    started = time.perf_counter()
    k, room = joint_release(views, held, rooms=[1]) or (-1, -1)
    assert 0 <= k < RELEASE_CANDIDATES and room == 1
    assert time.perf_counter() - started < 1.0  # rollouts are capped (ROLLOUT_MAX), not 500 deep


@dataclass
class Engine:
    """What ``next_release`` reads of a backend."""

    room: bool
    view: EngineView | None
    slots: float = 1

    def engine_room(self, engine_queue: int) -> bool:
        return self.room

    def engine_view(self, slots_hint: float) -> EngineView | None:
        return self.view

    def known_slots(self) -> float:
        return self.slots


def test_nothing_is_released_while_every_engine_is_full() -> None:
    engines = [Engine(False, idle(FAST)), Engine(False, idle(SLOW))]
    assert next_release(engines, [Held(0.0, SHORT, 32), Held(0.0, LONG, 32)], 1) is None


def test_a_lone_request_and_unmeasured_engines_are_routed_by_the_strategy() -> None:
    assert next_release([Engine(True, idle(FAST)), Engine(False, idle(SLOW))], [Held(0.0, LONG, 32)], 1) == (0, GREEDY)
    unmeasured = [Engine(True, idle(FAST)), Engine(False, None, math.inf)]
    assert next_release(unmeasured, [Held(0.0, LONG, 32), Held(0.0, SHORT, 32)], 1) == (0, GREEDY)


def test_several_held_requests_are_released_jointly_to_an_engine_with_room() -> None:
    engines = [Engine(False, busy(FAST, 3)), Engine(True, idle(SLOW))]
    assert next_release(engines, [Held(0.0, LONG, 32), Held(0.0, SHORT, 32)], 1) == (1, 1)


def test_a_single_candidate_is_served_first_come_first_served_full_or_not() -> None:
    held = [Held(0.0, LONG, 32), Held(0.0, SHORT, 32)]
    assert next_release([Engine(False, busy(FAST, 3))], held, 1) == (0, GREEDY)
