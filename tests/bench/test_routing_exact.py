"""``offline --exact``: swarm-router's engine view with the named parts taken from the engine itself."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import Engine, EngineSpec, Seq
from routing.exact import ExactEstimator, parse_parts
from routing.offline import race
from swarm_runtime.router.estimator import LoadEstimator
from swarm_runtime.router.twin import EngineView, Job, StepModel

LEARNED = EngineView([Job(100.0, 5.0)], 6.0, StepModel(0.02, 5e-5, 512, 0.001), residual=0.004, under_way_s=0.003)


def engine_mid_step() -> Engine:
    """A slow engine with one sequence decoding, one prefilling and one waiting, a step under way."""
    engine = Engine(EngineSpec(slowdown=2.5, max_num_seqs=2))
    engine.add(Seq(10, 4))
    engine.plan()
    engine.finish()  # the first prompt fits the budget: first token out
    engine.add(Seq(700, 3))
    engine.add(Seq(50, 2))
    engine.plan()  # under way: one decode token and the first 511 tokens of the 700
    return engine


def test_only_the_named_parts_come_from_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LoadEstimator, "engine_view", lambda self, slots_hint=math.inf: LEARNED)
    engine = engine_mid_step()
    now = 10.0
    est = ExactEstimator(lambda: now, 512, lambda: (engine, now + 0.05), parse_parts("jobs,under"))
    view = est.engine_view()
    assert view is not None
    assert view.jobs == [Job(0.0, 2.0), Job(189.0, 2.0), Job(50.0, 1.0)]  # after the step under way
    assert view.under_way_s == pytest.approx(0.05)
    assert (view.model, view.slots, view.residual) == (LEARNED.model, LEARNED.slots, LEARNED.residual)
    assert len(engine.running[1:]) == 1 and engine.running[1].prefilled == 0  # the engine itself untouched

    est = ExactEstimator(lambda: now, 512, lambda: (engine, None), parse_parts("all"))
    view = est.engine_view()
    assert view is not None
    assert view.model == StepModel(2.5 * 0.012, 2.5 * 0.00004, 512, 2.5 * 0.0008)
    assert (view.under_way_s, view.residual, est.slots) == (0.0, 0.0, 2.0)


def test_the_router_with_exact_state_serves_every_request_and_decides_differently() -> None:
    exact = race("swarm-late", [1.0, 2.5], load=0.95, seconds=12, seed=1, exact=parse_parts("all"))
    learned = race("swarm-late", [1.0, 2.5], load=0.95, seconds=12, seed=1)
    assert len(exact) == len(learned) > 100
    assert all(r.ok and r.ttft >= 0 for r in exact)
    assert [r.backend for r in exact] != [r.backend for r in learned]


def test_unknown_parts_are_named() -> None:
    assert parse_parts("") == frozenset()
    with pytest.raises(ValueError, match=r"unknown part.*bogus"):
        parse_parts("jobs,bogus")
