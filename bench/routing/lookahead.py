"""Ceilings for the offline race: the exact TTFT on an engine, and routing that looks ahead.

Greedy routing (swarm-router, ``oracle``) gives each request the backend where *its own* first
token comes soonest. A rollout instead tries each backend for the request, runs both engines
forward while the arrivals that follow are routed greedily, and keeps the backend whose
future costs least (``cost`` of every TTFT in the window, e.g. their squares to weigh the
tail). Fed the schedule's real next arrivals it is clairvoyant: no router can know them, so
it bounds what any router could reach. Fed futures sampled from the workload's own
distribution it is what a router that knows the traffic's statistics exactly could do.

Late binding gets some of that knowledge honestly: once every engine is full, requests wait in
the router, and when one has room :func:`joint_release` picks which waiting request goes where,
by the same rollout over the requests still waiting.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from .engine import Engine, Seq
from .workload import request_size

__all__ = ["COSTS", "Arrival", "EngineState", "exact_ttft", "greedy_choice", "joint_release", "rollout_choice",
           "sampled_futures"]

Arrival = tuple[float, int, int]  # (at, prompt tokens, output tokens); TTFT counts from ``at``
JOINT_CANDIDATES = 6  # joint_release weighs the first this many waiting requests
EngineState = tuple[Engine, float | None]  # an engine and when its step under way ends (None: idle)

COSTS: dict[str, Callable[[float], float]] = {
    "sum": lambda t: t,
    "square": lambda t: t * t,
}


def exact_ttft(engine: Engine, busy_until: float | None, prompt_tokens: int, now: float) -> float:
    """A new request's TTFT on ``engine`` if nothing else arrived: a copy of the engine run forward."""
    ahead = engine.fork()
    mine = Seq(prompt_tokens, 1)
    ahead.add(mine)
    elapsed = 0.0
    if busy_until is not None:  # first the step under way
        elapsed = busy_until - now
        ahead.finish()
    while mine.emitted == 0:
        elapsed += ahead.plan()
        ahead.finish()
    return elapsed


def greedy_choice(states: list[EngineState], prompt_tokens: int, now: float) -> int:
    """The backend index where a ``prompt_tokens`` prompt sent now gets its first token soonest."""
    return min(range(len(states)), key=lambda b: exact_ttft(*states[b], prompt_tokens, now))


def _rollout_cost(states: list[EngineState], now: float, first: Arrival, target: int, future: list[Arrival],
                  cost: Callable[[float], float]) -> float:
    """``first`` on backend ``target``, ``future`` routed greedily (those that arrived already: now, in
    order): the summed cost of all their TTFTs."""
    engines = [engine.fork() for engine, _ in states]
    busy = [until for _, until in states]
    events: list[tuple[float, int, str, int]] = []
    tie = itertools.count()
    clock = now
    ttfts: list[float] = []

    def start_step(i: int) -> None:
        duration = engines[i].plan()
        busy[i] = clock + duration if duration > 0 else None
        if busy[i] is not None:
            heapq.heappush(events, (clock + duration, next(tie), "step", i))

    def admit(i: int, arrival: Arrival) -> None:
        at, prompt, output = arrival
        seq = Seq(prompt, output, on_token=lambda n, _last: ttfts.append(clock - at) if n == 1 else None)
        engines[i].add(seq)
        if busy[i] is None:
            start_step(i)

    for i, until in enumerate(busy):
        if until is not None:
            heapq.heappush(events, (until, next(tie), "step", i))
    admit(target, first)
    for k, arrival in enumerate(future):
        heapq.heappush(events, (max(arrival[0], now), next(tie), "arrive", k))
    while len(ttfts) <= len(future):  # every engine step emits or prefills, so this ends
        clock, _, kind, i = heapq.heappop(events)
        if kind == "arrive":
            admit(greedy_choice(list(zip(engines, busy, strict=True)), future[i][1], clock), future[i])
        else:
            engines[i].finish()
            start_step(i)
    return sum(cost(t) for t in ttfts)


def rollout_choice(states: list[EngineState], now: float, first: Arrival, futures: list[list[Arrival]],
                   cost: Callable[[float], float]) -> int:
    """The backend index with the lowest total cost over ``futures`` (each a list of later arrivals)."""
    totals = [sum(_rollout_cost(states, now, first, b, future, cost) for future in futures)
              for b in range(len(states))]
    return min(range(len(states)), key=totals.__getitem__)


def joint_release(states: list[EngineState], now: float, waiting: list[Arrival], rooms: list[int],
                  cost: Callable[[float], float]) -> tuple[int, int]:
    """``(position in waiting, backend)``: what to send now, called whenever a backend has room.

    A lone waiting request goes greedily to the backend of its soonest first token, even one
    without room (holding it would only add to its wait). Several waiting (every backend was
    full): the release, among backends with room, whose rollout over the rest costs least.
    """
    if len(waiting) == 1:
        return 0, greedy_choice(states, waiting[0][1], now)
    options = [(k, b) for k in range(min(len(waiting), JOINT_CANDIDATES)) for b in rooms]
    return min(options, key=lambda o: _rollout_cost(states, now, waiting[o[0]], o[1],
                                                   waiting[:o[0]] + waiting[o[0] + 1:], cost))


def sampled_futures(rng: random.Random, rate: float, now: float, horizon: float, count: int) -> list[list[Arrival]]:
    """``count`` Poisson arrival sequences at ``rate`` over ``(now, now + horizon)``, sizes from the workload."""
    futures: list[list[Arrival]] = []
    for _ in range(count):
        future: list[Arrival] = []
        t = now + rng.expovariate(rate)
        while t < now + horizon:
            future.append((t, *request_size(rng)))
            t += rng.expovariate(rate)
        futures.append(future)
    return futures
