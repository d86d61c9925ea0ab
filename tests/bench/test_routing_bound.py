"""The full-knowledge search: its replay is the engine model the race runs, and the search only improves."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.bound import Plan, anneal, replay, scorer
from routing.engine import Engine, EngineSpec, Seq
from routing.offline import race
from routing.report import summarize
from routing.workload import offered_rate, schedule

SLOWDOWNS = [1.0, 2.5]


def test_replaying_a_routers_choices_in_arrival_order_reproduces_its_race() -> None:
    raced = race("jsq", SLOWDOWNS, load=0.9, seconds=10, seed=4)
    requests = schedule(offered_rate(SLOWDOWNS, 0.9), 10, 4)
    plan = Plan(tuple(0 if r.backend.endswith("x1") else 1 for r in raced), tuple(float(i) for i in range(len(raced))))
    replayed = replay(requests, plan)
    assert [r.ttft for r in replayed] == pytest.approx([r.ttft for r in raced], abs=1e-9)
    assert [r.e2e for r in replayed] == pytest.approx([r.e2e for r in raced], abs=1e-9)


def test_an_engine_admits_the_lowest_rank_first_and_ties_by_arrival() -> None:
    engine = Engine(EngineSpec(max_num_seqs=1))
    engine.add(Seq(10, 1, rank=9.0))
    engine.plan()  # admitted: the one slot is taken
    late, early, tied = Seq(10, 1, rank=5.0), Seq(10, 1, rank=1.0), Seq(10, 1, rank=5.0)
    for seq in (late, early, tied):
        engine.add(seq)
    assert list(engine.waiting) == [early, late, tied]
    assert engine.fork().waiting[0].rank == 1.0  # a copy keeps the order


def test_a_plan_that_does_not_fit_the_schedule_is_refused() -> None:
    requests = schedule(offered_rate(SLOWDOWNS, 0.5), 3, 1)
    n = len(requests)
    with pytest.raises(ValueError, match="ranks"):
        replay(requests, Plan((0,) * n, (0.0,) * (n - 1)))
    with pytest.raises(ValueError, match="engine index 2"):
        replay(requests, Plan((2,) * n, (0.0,) * n))


def test_the_search_never_ends_worse_than_it_started_and_finds_better_plans() -> None:
    requests = schedule(offered_rate(SLOWDOWNS, 0.95), 12, 2)
    peer = summarize(race("jsq", SLOWDOWNS, load=0.95, seconds=12, seed=2), "x2.5", 2, 12)
    score = scorer(peer, peer_worst_s=10.0, start=2, end=12, cap=False)
    start = Plan((1,) * len(requests), tuple(float(i) for i in range(len(requests))))  # everything on the slow GPU
    first = score(replay(requests, start))
    plan, found = anneal(requests, start, score, "order", 300, random.Random(0))
    assert found.score < first.score / 2
    assert score(replay(requests, plan)).score == pytest.approx(found.score)  # the plan is what was scored
    with pytest.raises(ValueError, match="moves"):
        anneal(requests, start, score, "swap", 1, random.Random(0))
