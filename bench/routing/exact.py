"""swarm-router's view of an engine with some of its estimates replaced by the engine's exact state.

Which estimate costs the router most? ``python -m routing.offline --policies swarm-late --exact
jobs,model`` runs the router's own strategy, replay and late binding on a view in which the
named parts are exact; the rest stays what the router learned:

* ``jobs``: every sequence on the engine after the step under way, with its prompt tokens still
  to prefill and its output tokens still to generate (the router knows progress only from stream
  events, and a prompt's prefill progress not at all before its first token);
* ``model``: the step cost (the router fits it from scraped counters);
* ``slots``: the sequence limit (the router learns it from scraped queues);
* ``under``: when the step under way ends (the router infers it from the last relayed event);
* ``residual``: no learned correction (the router adds measured minus replayed TTFT).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from swarm_runtime.router.estimator import LoadEstimator
from swarm_runtime.router.twin import EngineView, Job, StepModel
from swarm_runtime.vllm_metrics import VllmMetrics

from .engine import Engine

__all__ = ["PARTS", "ExactEstimator", "parse_parts"]

PARTS = ("jobs", "model", "slots", "under", "residual")
EngineState = Callable[[], tuple[Engine, float | None]]  # the engine and when its step under way ends (None: idle)


def parse_parts(text: str) -> frozenset[str]:
    """``jobs,model`` or ``all`` as a set of :data:`PARTS`; ValueError naming an unknown part."""
    parts = frozenset(PARTS) if text == "all" else frozenset(p for p in text.split(",") if p)
    if unknown := sorted(parts - set(PARTS)):
        raise ValueError(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)}, or all)")
    return parts


class ExactEstimator(LoadEstimator):
    """A :class:`LoadEstimator` whose :meth:`engine_view` takes ``parts`` from the engine itself."""

    def __init__(self, clock: Callable[[], float], token_budget: int, state: EngineState,
                 parts: frozenset[str]) -> None:
        super().__init__(clock, token_budget)
        self.state = state
        self.parts = parts

    def _exact_slots(self) -> None:
        if "slots" in self.parts:
            self.slots = float(self.state()[0].spec.max_num_seqs)

    def scraped(self, metrics: VllmMetrics, in_flight: int, now: float) -> None:
        super().scraped(metrics, in_flight, now)
        self._exact_slots()

    def first_token(self, seq: int, ttft_s: float) -> None:
        super().first_token(seq, ttft_s)
        if "residual" in self.parts:
            self.residual = 0.0

    def engine_view(self, slots_hint: float = math.inf) -> EngineView | None:
        self._exact_slots()
        view = super().engine_view(slots_hint)
        if view is None:
            return None
        engine, busy_until = self.state()
        spec = engine.spec
        changes: dict[str, object] = {}
        if "jobs" in self.parts:
            after = engine.fork()
            if busy_until is not None:
                after.finish()  # the step under way: the replay starts after it
            changes["jobs"] = [Job(float(s.prompt_tokens - s.prefilled),  # output counted after the first token
                                   float(max(1, s.output_tokens - max(1, s.emitted))))
                               for s in (*after.running, *after.waiting)]
        if "model" in self.parts:
            changes["model"] = StepModel(spec.slowdown * spec.step_base_s, spec.slowdown * spec.prefill_per_token_s,
                                         spec.max_batched_tokens, spec.slowdown * spec.step_per_seq_s)
        if "under" in self.parts:
            changes["under_way_s"] = max(0.0, busy_until - self.clock()) if busy_until is not None else 0.0
        if "residual" in self.parts:
            changes["residual"] = 0.0
        return dataclasses.replace(view, **changes)  # type: ignore[arg-type]
