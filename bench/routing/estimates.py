"""How close swarm-router's estimates come to the simulated engines (``routing.offline --estimates``).

Two measures per engine, over every race a :class:`Watch` is given: the error of the time to first
token the router predicted for each request it sent (its replay plus learned correction, taken when
the decision's replay is the one the request was sent on) against the one the engine then gave, and
the prefill cost per prompt token that the router's step-cost fit holds at each scrape, against the
engine's true one. Both count from ``after_s`` into a race, as the goals do.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from swarm_runtime.router.estimator import LoadEstimator
from swarm_runtime.vllm_metrics import VllmMetrics

from .engine import EngineSpec

__all__ = ["Watch"]


@dataclass
class Watch:
    """What the estimators of each engine (by index) got wrong, summed over races."""

    after_s: float = 0.0
    errors: dict[int, list[float]] = field(default_factory=dict)  # predicted - measured TTFT, seconds
    slopes: dict[int, list[float]] = field(default_factory=dict)  # fitted prefill seconds per prompt token

    def estimator(self, clock: Callable[[], float], token_budget: int, index: int) -> LoadEstimator:
        return _Watched(clock, token_budget, self, index)

    def report(self, specs: list[EngineSpec]) -> list[str]:
        """A line per engine: the predicted TTFT's error, then the fitted prefill cost against the true one."""
        lines = []
        for index, spec in enumerate(specs):
            parts = []
            errors = self.errors.get(index, [])
            if len(errors) >= 2:
                misses = sorted(abs(e) for e in errors)
                p90 = misses[int(0.9 * (len(misses) - 1))]
                parts.append(f"TTFT predicted - measured over {len(errors)} requests: mean "
                             f"{statistics.mean(errors) * 1e3:+.1f} ms, |error| median "
                             f"{statistics.median(misses) * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms")
            slopes = self.slopes.get(index, [])
            if len(slopes) >= 2:
                low, mid, high = statistics.quantiles(slopes, n=4)
                true = spec.slowdown * spec.prefill_per_token_s
                parts.append(f"prefill slope median {mid * 1e6:.1f} us/token (quartiles {low * 1e6:.1f}-"
                             f"{high * 1e6:.1f}, true {true * 1e6:.1f})")
            lines.append(f"  engine x{spec.slowdown:g}: " + ("; ".join(parts) or "nothing measured"))
        return lines


class _Watched(LoadEstimator):
    def __init__(self, clock: Callable[[], float], token_budget: int, watch: Watch, index: int) -> None:
        super().__init__(clock, token_budget)
        self._watch = watch
        self._index = index
        self._predicted: dict[int, float] = {}

    def sent(self, seq: int, prompt_tokens: int, max_tokens: int, in_flight: int) -> None:
        super().sent(seq, prompt_tokens, max_tokens, in_flight)
        replayed = self.sent_requests[seq].replayed  # None unless the decision's replay is still current
        if replayed is not None and self.clock() >= self._watch.after_s:
            self._predicted[seq] = max(0.0, replayed + self.residual)  # what expected_ttft answered

    def first_token(self, seq: int, ttft_s: float) -> None:
        predicted = self._predicted.pop(seq, None)
        if predicted is not None:
            self._watch.errors.setdefault(self._index, []).append(predicted - ttft_s)
        super().first_token(seq, ttft_s)

    def finished(self, seq: int) -> None:
        self._predicted.pop(seq, None)  # no first token: nothing to compare
        super().finished(seq)

    def scraped(self, metrics: VllmMetrics, in_flight: int, now: float) -> None:
        super().scraped(metrics, in_flight, now)
        model = self.step_model()
        if model is not None and now >= self._watch.after_s:
            self._watch.slopes.setdefault(self._index, []).append(model.prefill_s_per_token)
