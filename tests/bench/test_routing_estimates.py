"""``offline --estimates``: how close swarm-router's predicted TTFT and fitted prefill cost come
to the simulated engines, measured without changing a single routing decision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import EngineSpec
from routing.estimates import Watch
from routing.offline import Sessions, race

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_watching_the_estimates_changes_no_decision() -> None:
    for sessions in (None, Sessions(10)):
        plain = race("swarm-late", [1.0, 2.5], 0.8, 20, 3, sessions=sessions)
        watch = Watch(after_s=5.0)
        watched = race("swarm-late", [1.0, 2.5], 0.8, 20, 3, sessions=sessions, watch=watch)
        assert watched == plain
        assert set(watch.errors) == set(watch.slopes) == {0, 1}  # both engines measured


def test_the_estimates_are_measured_against_the_engines_own() -> None:
    watch = Watch(after_s=5.0)
    for seed in (1, 2):
        race("swarm-late", [1.0, 2.5], 0.8, 35, seed, watch=watch)
    specs = [EngineSpec(slowdown=1.0), EngineSpec(slowdown=2.5)]
    fast, slow = watch.report(specs)
    assert "engine x1:" in fast and "engine x2.5:" in slow and "true 40.0" in fast and "true 100.0" in slow
    for index, spec in enumerate(specs):
        slopes = sorted(watch.slopes[index])
        true = spec.slowdown * spec.prefill_per_token_s
        assert true / 2 < slopes[len(slopes) // 2] < true * 2  # the fit is in the engine's range, not the prior's
        misses = sorted(abs(e) for e in watch.errors[index])
        assert misses[len(misses) // 2] < 0.05  # most predictions within 50 ms of the TTFT the engine gave


def test_an_engine_with_nothing_measured_says_so() -> None:
    assert Watch().report([EngineSpec()]) == ["  engine x1: nothing measured"]


def test_estimates_and_exact_parts_do_not_mix() -> None:
    run = subprocess.run([sys.executable, "-m", "routing.offline", "--estimates", "--exact", "jobs"], cwd=BENCH,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--estimates" in run.stderr and "--exact" in run.stderr
