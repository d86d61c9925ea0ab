"""The offline routing race runs swarm-router's own code: late binding as its pool does it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.offline import race


def test_late_binding_serves_every_request_and_decides_differently_from_early_binding() -> None:
    late = race("swarm-late", [1.0, 2.5], load=0.95, seconds=12, seed=1)
    early = race("swarm", [1.0, 2.5], load=0.95, seconds=12, seed=1)
    assert len(late) == len(early) > 100
    assert all(r.ok and r.ttft >= 0 and r.e2e >= r.ttft for r in late)  # nothing lost while held
    assert [r.backend for r in late] != [r.backend for r in early]


def test_a_router_that_sets_vllm_priorities_is_offered_the_same_load_as_its_peers() -> None:
    # the engines' capacity under long-first admission is ~3 % lower; the schedule must not follow it
    ranked = race("oracle", [1.0, 2.5], load=0.95, seconds=8, seed=3, priority="long-first")
    peer = race("jsq", [1.0, 2.5], load=0.95, seconds=8, seed=3)
    assert [(r.at, r.prompt_tokens) for r in ranked] == [(r.at, r.prompt_tokens) for r in peer]
