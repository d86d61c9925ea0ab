"""Late binding: which held request goes to which engine when one has room (pure).

While every engine holds its sequence limit plus ``engine_queue`` requests, new requests wait
in the router instead of in one engine's queue (``pool.py``). When an engine has room again,
the router knows something an early-binding router never does: which requests came after
each held one. :func:`joint_release` uses it. For every (held request, engine with room)
pair it rolls the engines forward (``twin.py``): the pair's request goes to that engine, the
other held requests follow in arrival order, each to the engine that would give it the
earliest first token, and the pair whose held requests' TTFTs (time held included) have the
smallest sum of cubes is released. A short prompt can thus go to the slow GPU now because
a long one held behind it is better served by the fast GPU's next free slot. Prefix affinity
stays a tie-breaker, as on arrival: a release to the held request's warm engine wins while its
rollout is within that request's affinity allowance of the cheapest. See
``runtime/ROUTING.md`` § Late binding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .routing import AFFINITY_MAX_REL, BackendStats, RequestKey, affinity_slack_s, warm_backend
from .twin import EngineView, Job

__all__ = ["COST_POWER", "GREEDY", "RELEASE_CANDIDATES", "RELEASE_WINDOW", "ROLLOUT_MAX", "Held", "Holding", "hold",
           "joint_release", "next_release"]

RELEASE_CANDIDATES = 6  # the oldest held requests considered for release
ROLLOUT_MAX = 32  # held requests a rollout places (bounds a decision to ~10 ms at 2 engines)
RELEASE_WINDOW = ROLLOUT_MAX + 1  # the oldest held requests a decision reads: callers need build no more
COST_POWER = 3  # a rollout costs the sum of its TTFTs cubed (offline, squares and fourth powers met no more goals)


@dataclass(frozen=True, slots=True)
class Held:
    """A request waiting in the router: how long it has waited, its size, engines it must avoid,
    and the engine whose prefix cache is warm for it with the delay that warmth is worth."""

    waited_s: float
    prompt_tokens: int
    max_tokens: int
    excluded: frozenset[int] = frozenset()  # indexes into the views (backends that already failed it)
    warm: int | None = None  # index into the views of its warm engine (``RequestKey.warm``)
    warm_slack_s: float = 0.0  # ``routing.affinity_slack_s`` of that engine
    warm_tokens: int = 0  # prompt tokens that engine's prefix cache spares

    def prompt_on(self, engine: int) -> int:
        """Prompt tokens ``engine`` would compute for it."""
        return max(1, self.prompt_tokens - self.warm_tokens) if engine == self.warm else self.prompt_tokens


def hold(waited_s: float, key: RequestKey, candidates: Sequence[BackendStats], slack: int,
         exclude: frozenset[str] = frozenset()) -> Held:
    """A held request as the release sees it among ``candidates``: the ones named in ``exclude``
    (they already failed it) are avoided, and the engine its prefix was last sent to (``key.warm``)
    is warm, worth ``slack`` requests' worth of that engine's queueing delay once its rates are
    measured."""
    excluded = frozenset(i for i, b in enumerate(candidates) if b.name in exclude)
    warm = warm_backend(candidates, key)
    rates = candidates[warm].rates if warm is not None else None
    slack_s = affinity_slack_s(candidates[warm], rates, slack) if warm is not None and rates is not None else 0.0
    return Held(waited_s, key.prompt_tokens, key.max_tokens, excluded, warm, slack_s,
                key.warm_tokens if warm is not None else 0)


class Holding(Protocol):
    """What the release reads about a backend (``estimator.EstimatedLoad`` provides it)."""

    def engine_room(self, engine_queue: int) -> bool: ...
    def engine_view(self, slots_hint: float) -> EngineView | None: ...
    def known_slots(self) -> float: ...


GREEDY = -1
""":func:`next_release`'s backend index meaning "the oldest held request, by the routing strategy"."""


def next_release(candidates: Sequence[Holding], held: Sequence[Held], engine_queue: int) -> tuple[int, int] | None:
    """What to release now: None to keep holding (no engine has room), ``(k, i)`` to send held
    request ``k`` to candidate ``i``, or ``(0, GREEDY)`` to route the oldest one as an early-binding
    router would (a lone held request, a single candidate: nothing to decide jointly, or engines
    not measured yet). ``candidates`` are the backends that may take one of these requests now
    (healthy, under their router cap); ``held`` is oldest first, and only its first
    :data:`RELEASE_WINDOW` are read."""
    if not held:
        return None
    if len(candidates) == 1:
        return 0, GREEDY  # first come, first served: with one engine, holding decides nothing
    rooms = [i for i, b in enumerate(candidates) if b.engine_room(engine_queue)]
    if not rooms:
        return None
    if len(held) == 1:
        return 0, GREEDY
    hint = min((s for b in candidates if math.isfinite(s := b.known_slots())), default=math.inf)
    views = [b.engine_view(hint) for b in candidates]
    if any(v is None for v in views):
        return 0, GREEDY
    return joint_release([v for v in views if v is not None], held, rooms) or (0, GREEDY)


def _ttft(view: EngineView, jobs: list[Job], prompt_tokens: int) -> float:
    copies = [Job(j.prompt_left, j.decode_left) for j in jobs]  # the replay consumes prefill in place
    return max(0.0, view.replay(copies, prompt_tokens) + view.residual)


def joint_release(views: Sequence[EngineView], held: Sequence[Held], rooms: Sequence[int]) -> tuple[int, int] | None:
    """``(held index, view index)`` of the release with the cheapest rollout, or None when no
    candidate may go to an engine with room. ``held`` is in arrival order; ``rooms`` index the
    views of engines with room. Cost: the sum of cubed TTFTs, so one long wait weighs more
    than several short ones.

    Affinity breaks near-ties as it does on arrival (``routing.make_load_strategy``): the cheapest
    release of a held request to its warm engine wins when it costs at most as much more than the
    cheapest release as delaying that one request by its allowance would: ``warm_slack_s``, and at
    most :data:`~.routing.AFFINITY_MAX_REL` of its TTFT elsewhere (time held included). For a
    single held request that is the arrival rule's bound.
    """
    orders = [[first, *held[:k], *held[k + 1:]][:ROLLOUT_MAX]
              for k, first in enumerate(held[:RELEASE_CANDIDATES])]
    best: tuple[int, int] | None = None
    best_cost = math.inf
    for k, order in enumerate(orders):
        for room in rooms:
            if room not in order[0].excluded and (cost := _rollout(views, order, room, best_cost)) < best_cost:
                best, best_cost = (k, room), cost
    if best is None:
        return None
    chosen, chosen_cost = best, math.inf
    for k, order in enumerate(orders):
        first, warm = order[0], order[0].warm
        if warm is None or warm not in rooms or warm in first.excluded or (k, warm) == best:
            continue
        ttft = first.waited_s + _ttft(views[warm], list(views[warm].jobs), first.prompt_on(warm))
        delay = min(first.warm_slack_s, AFFINITY_MAX_REL / (1 + AFFINITY_MAX_REL) * ttft)
        allowed = min(chosen_cost, best_cost + ttft ** COST_POWER - (ttft - delay) ** COST_POWER)
        if (cost := _rollout(views, order, warm, allowed)) <= allowed:
            chosen, chosen_cost = (k, warm), cost
    return chosen


def _rollout(views: Sequence[EngineView], order: Sequence[Held], room: int, bound: float) -> float:
    """Summed cubed TTFTs, time held included, of ``order[0]`` released to ``room`` and the rest
    following, each to the engine of its earliest first token; stops once past ``bound``."""
    jobs = [list(v.jobs) for v in views]
    cost = 0.0
    for n, h in enumerate(order):
        if n == 0:
            where, ttft = room, _ttft(views[room], jobs[room], h.prompt_on(room))
        else:
            ttft, where = min((_ttft(v, jobs[i], h.prompt_on(i)), i) for i, v in enumerate(views)
                              if i not in h.excluded or len(h.excluded) >= len(views))
        cost += (h.waited_s + ttft) ** COST_POWER
        if cost > bound:
            break
        jobs[where].append(Job(float(max(1, h.prompt_on(where))), views[where].output_steps(h.max_tokens)))
    return cost
