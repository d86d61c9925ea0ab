"""A circuit breaker as a small state machine with an injected clock.

closed --(failure_threshold consecutive failures)--> open --(open_s elapsed)--> half_open
half_open --(success_threshold successes)--> closed; half_open --(any failure)--> open.
In half_open at most ``half_open_probes`` requests are let through at once; a probe whose
outcome never arrives (its client went away) stops counting after ``open_s``.

Two hooks let a pool-wide guard overrule one breaker (see ``containment.py``): ``may_trip``
is asked before closed -> open and can refuse (the breaker stays closed, its streak kept), and
``panic`` makes an open breaker let requests through while too few backends are available.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


STATE_CODES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


class CircuitBreaker:
    """Decides whether a backend may receive requests, from the outcomes it has seen."""

    def __init__(
        self,
        clock: Callable[[], float],
        failure_threshold: int = 5,
        open_s: float = 10.0,
        half_open_probes: int = 1,
        success_threshold: int = 1,
    ) -> None:
        self._clock = clock
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self.half_open_probes = half_open_probes
        self.success_threshold = success_threshold
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._probes = 0
        self._opened_at = 0.0
        self._probe_at = 0.0
        self.may_trip: Callable[[], bool] = _yes
        self.panic: Callable[[], bool] = _no
        self.trips = 0
        """How often this breaker opened (tests and logs; never reset)."""
        self.refused_trips = 0
        """How often ``may_trip`` kept it closed."""

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.open_s:
            self._state = BreakerState.HALF_OPEN
            self._probes = 0
            self._successes = 0
        return self._state

    def can_accept(self) -> bool:
        """May a request be sent now? Does not reserve a probe: call :meth:`on_start` for that."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is not BreakerState.HALF_OPEN:
            return self.panic()
        if self._probes >= self.half_open_probes and self._clock() - self._probe_at >= self.open_s:
            self._probes = 0
        return self._probes < self.half_open_probes

    def routable(self) -> bool:
        """Worth queueing for: not open, or open while the pool is in panic."""
        return self.state is not BreakerState.OPEN or self.panic()

    def on_start(self) -> None:
        """A request was dispatched to the backend."""
        if self.state is BreakerState.HALF_OPEN:
            self._probes += 1
            self._probe_at = self._clock()

    def record_success(self) -> None:
        state = self.state
        self._failures = 0
        if state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._state = BreakerState.CLOSED

    def record_failure(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._trip()
            return
        if state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                if self.may_trip():
                    self._trip()
                else:
                    self.refused_trips += 1

    def record_ignored(self) -> None:
        """The request ended with an outcome that says nothing about the backend: free its probe."""
        if self._state is BreakerState.HALF_OPEN:
            self._probes = max(0, self._probes - 1)

    def _trip(self) -> None:
        self.trips += 1
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._successes = 0
        self._probes = 0
