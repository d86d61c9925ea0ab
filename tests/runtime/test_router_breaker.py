"""Circuit breaker transitions under a fake clock."""

from __future__ import annotations

from swarm_runtime.router.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kw: int | float) -> CircuitBreaker:
    args: dict[str, float] = {"failure_threshold": 3, "open_s": 10.0, "half_open_probes": 1,
                              "success_threshold": 1}
    args.update(kw)
    return CircuitBreaker(clock, int(args["failure_threshold"]), args["open_s"],
                          int(args["half_open_probes"]), int(args["success_threshold"]))


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the streak
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.can_accept()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.can_accept()


def test_half_open_after_open_s_lets_limited_probes_through() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1, half_open_probes=2)
    b.record_failure()
    clock.now += 9.99
    assert b.state is BreakerState.OPEN
    clock.now += 0.01
    assert b.state is BreakerState.HALF_OPEN and b.can_accept()
    b.on_start()
    assert b.can_accept()
    b.on_start()
    assert not b.can_accept()


def test_half_open_success_closes_and_failure_reopens() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1, success_threshold=2)
    b.record_failure()
    clock.now += 10
    b.on_start()
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN
    b.on_start()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    clock.now += 10
    b.on_start()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.now += 5
    assert not b.can_accept()  # the open period restarted at the failed probe


def test_a_lost_probe_stops_blocking_after_open_s() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1)
    b.record_failure()
    clock.now += 10
    b.on_start()  # the probe's client disconnects: no outcome is ever recorded
    assert not b.can_accept()
    clock.now += 10
    assert b.state is BreakerState.HALF_OPEN and b.can_accept()


def test_breaker_hooks_refuse_and_release() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=2)
    b.may_trip = lambda: False
    for _ in range(4):
        b.record_failure()
    assert b.state is BreakerState.CLOSED and (b.trips, b.refused_trips) == (0, 3)
    b.may_trip = lambda: True
    b.record_failure()
    assert b.state is BreakerState.OPEN and b.trips == 1
    clock.now += 10
    b.on_start()
    assert not b.can_accept()
    b.record_ignored()  # the probe's outcome said nothing about the backend
    assert b.can_accept() and b.state is BreakerState.HALF_OPEN
