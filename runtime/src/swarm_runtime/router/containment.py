"""Pool-wide limits on what circuit breakers may do, so failures cannot take a whole model dark.

A breaker only sees its own backend. A request that every backend fails on (a "poison"
request, or a client hammering one) looks like a backend fault to each of them in turn; left
alone, the breakers would eject every healthy backend. As Envoy's outlier detection does:

* **max ejection**: a breaker may open only while, for every model its backend serves, at
  most ``max_ejection_percent`` of that model's backends (at least one) would be out
  (open or half-open), and at least one other backend stays healthy with a closed breaker.
* **panic**: while fewer than ``panic_threshold_percent`` of a model's backends are available
  (healthy, breaker not open), open breakers of that model's backends let requests through.
  Active health checks are not overridden: a backend whose ``/health`` fails is really down.

The proxy holds the backends a request failed on after they had it as *suspects* until
another backend gives a second opinion: :func:`settle` when one answers, :func:`forgive`
when the request is poison (it failed on two) or its client left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .breaker import BreakerState
from .config import BreakerConfig
from .pool import Backend, Pool

__all__ = ["EjectionGuard", "forgive", "install", "settle"]


def _out(backend: Backend) -> bool:
    return backend.breaker.state is not BreakerState.CLOSED


def _up(backend: Backend) -> bool:
    return backend.healthy and backend.breaker.state is not BreakerState.OPEN


class EjectionGuard:
    """Answers the two questions a breaker asks its pool: may I open, and is my model in panic?"""

    def __init__(self, by_model: dict[str, tuple[Backend, ...]], max_ejection_percent: int,
                 panic_threshold_percent: int) -> None:
        self.by_model = by_model
        self.max_ejection_percent = max_ejection_percent
        self.panic_threshold_percent = panic_threshold_percent

    def _groups(self, backend: Backend) -> Iterable[tuple[Backend, ...]]:
        return (self.by_model[m] for m in backend.models if m in self.by_model)

    def may_eject(self, backend: Backend) -> bool:
        for group in self._groups(backend):
            others = [b for b in group if b is not backend]
            cap = max(1, len(group) * self.max_ejection_percent // 100)
            if 1 + sum(_out(b) for b in others) > cap:
                return False
            if not any(b.healthy and not _out(b) for b in others):
                return False
        return True

    def in_panic(self, backend: Backend) -> bool:
        threshold = self.panic_threshold_percent
        if threshold <= 0:
            return False
        return any(sum(_up(b) for b in group) * 100 < threshold * len(group) for group in self._groups(backend))

    def bind(self, backend: Backend) -> tuple[Callable[[], bool], Callable[[], bool]]:
        """The ``may_trip`` and ``panic`` hooks for one backend's breaker."""
        return (lambda: self.may_eject(backend)), (lambda: self.in_panic(backend))


def install(pool: Pool, cfg: BreakerConfig) -> EjectionGuard:
    """Hook a guard built from ``cfg`` into every breaker of ``pool``."""
    guard = EjectionGuard(pool.by_model, cfg.max_ejection_percent, cfg.panic_threshold_percent)
    for backend in pool.backends.values():
        backend.breaker.may_trip, backend.breaker.panic = guard.bind(backend)
    return guard


def settle(suspects: list[Backend], status: int) -> None:
    """Another backend answered ``status``: a success charges the suspects, a 4xx says the request was bad."""
    for backend in suspects:
        if status < 400:
            backend.breaker.record_failure()
        else:
            backend.breaker.record_ignored()
    suspects.clear()


def forgive(suspects: list[Backend]) -> None:
    """The failures said nothing about the backends: charge none, free their half-open probes."""
    for backend in suspects:
        backend.breaker.record_ignored()
    suspects.clear()
