"""The routing race in virtual time: engines, router state and arrivals as one discrete-event loop.

No HTTP, no CPU noise: a policy change can be judged in seconds before the real-HTTP bench.
swarm-router's strategy runs with its real estimator (virtual clock, scrapes every
``scrape_s``); ``oracle`` is the same greedy choice made from the engines' exact state (each
candidate's engine copied and run forward until this request's first token): the ceiling of
any TTFT predictor; ``jsq`` is join-shortest-queue on the router's own in-flight counts (what
``power_of_two`` does with two backends), ``rr`` is round-robin.

    python -m routing.offline --load 0.8 --seed 1 --seconds 300   (from bench/)
    python -m routing.offline --load 0.95 --seed 2 --seconds 35 --from 5   (the bench's window)
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from swarm_runtime.router.estimator import EstimatedLoad, LoadEstimator
from swarm_runtime.router.routing import RequestKey, make_load_strategy
from swarm_runtime.vllm_metrics import VllmMetrics

from .engine import Engine, EngineSpec, Seq
from .report import quantile
from .workload import combined_capacity, schedule

__all__ = ["race"]

AFFINITY = True  # prompts here share no prefix, so affinity keys are random: it must not hurt


@dataclass(eq=False)
class _Backend(EstimatedLoad):
    """An engine plus the router's view of it (duck-types ``routing.BackendStats``)."""

    name: str
    engine: Engine
    est: LoadEstimator
    in_flight: int = 0
    limit: int = 64
    salt: int = field(init=False)
    busy_until: float | None = None

    def __post_init__(self) -> None:
        self.salt = zlib.crc32(self.name.encode())


def _exact_ttft(b: _Backend, prompt_tokens: int, now: float) -> float:
    """This request's TTFT on ``b``, running a copy of its engine forward (no later arrivals)."""
    engine = b.engine.fork()
    mine = Seq(prompt_tokens, 1)
    engine.add(mine)
    elapsed = 0.0
    if b.busy_until is not None:  # first the step under way
        elapsed = b.busy_until - now
        engine.finish()
    while mine.emitted == 0:
        elapsed += engine.plan()
        engine.finish()
    return elapsed


def race(policy: str, slowdowns: list[float], load: float, seconds: float, seed: int,
         scrape_s: float = 0.5) -> tuple[list[float], list[str]]:
    """TTFTs (in arrival order) and the backend each request went to."""
    now = 0.0
    clock: Callable[[], float] = lambda: now  # noqa: E731 -- the estimators read the loop's virtual time
    backends = [_Backend(f"b{i}-x{s:g}", Engine(EngineSpec(slowdown=s)), LoadEstimator(clock))
                for i, s in enumerate(slowdowns)]
    total, _ = combined_capacity([b.engine.spec for b in backends])
    plan = schedule(load * total, seconds, seed)
    strategy = make_load_strategy(2)
    rng = random.Random(seed)
    ttft = [-1.0] * len(plan)
    where = [""] * len(plan)
    events: list[tuple[float, int, str, int]] = []
    tie = itertools.count()
    for i, req in enumerate(plan):
        heapq.heappush(events, (req.at, next(tie), "arrive", i))
    heapq.heappush(events, (scrape_s, next(tie), "scrape", -1))
    last_arrival = plan[-1].at if plan else 0.0

    def step(b: _Backend) -> None:
        duration = b.engine.plan()
        if duration > 0:
            b.busy_until = now + duration
            heapq.heappush(events, (b.busy_until, next(tie), "step", backends.index(b)))
        else:
            b.busy_until = None

    held: list[int] = []

    def send(b: _Backend, idx: int) -> None:
        req = plan[idx]
        where[idx] = b.name
        b.est.sent(idx + 1, req.prompt_tokens, req.output_tokens, b.in_flight)
        b.in_flight += 1
        sent_at = now

        def on_token(n: int, last: bool, b: _Backend = b, i: int = idx, t0: float = sent_at) -> None:
            if n == 1:
                ttft[i] = now - plan[i].at
                b.est.first_token(i + 1, now - t0)
            if last:
                b.in_flight -= 1
                b.est.finished(i + 1)
                released[0] = True

        b.engine.add(Seq(req.prompt_tokens, req.output_tokens, on_token=on_token))
        if b.busy_until is None:
            step(b)

    def dispatch() -> None:
        for idx in list(held):
            req = plan[idx]
            key = RequestKey(req.tag if AFFINITY else None, idx + 1, req.prompt_tokens, req.output_tokens)
            if policy == "swarm":
                chosen = strategy(backends, key)
                assert isinstance(chosen, _Backend)
            elif policy == "oracle":
                chosen = min(backends, key=lambda b: _exact_ttft(b, req.prompt_tokens, now))
            elif policy == "jsq":
                low = min(b.in_flight for b in backends)
                chosen = rng.choice([b for b in backends if b.in_flight == low])
            else:
                chosen = backends[idx % len(backends)]
            held.remove(idx)
            send(chosen, idx)

    released = [False]
    while events:
        now, _, kind, idx = heapq.heappop(events)
        if kind == "arrive":
            held.append(idx)
            dispatch()
        elif kind == "step":
            b = backends[idx]
            released[0] = False
            b.engine.finish()
            if b.busy_until is not None and b.busy_until <= now:
                step(b)
            if released[0] and held:
                dispatch()
        else:
            for b in backends:
                e = b.engine
                m = VllmMetrics(float(len(e.running)), float(len(e.waiting)), 0.0, 0.0,
                                float(e.prompt_tokens_total), float(e.generation_tokens_total),
                                None, None, None, None)
                b.est.scraped(m, b.in_flight, now)
            if now < last_arrival or any(b.engine.busy() for b in backends):
                heapq.heappush(events, (now + scrape_s, next(tie), "scrape", -1))
    return ttft, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--from", dest="start", type=float, default=0.0, help="count requests sent from here on")
    parser.add_argument("--policies", default="swarm,oracle,jsq,rr")
    args = parser.parse_args()
    total, _ = combined_capacity([EngineSpec(slowdown=s) for s in (1.0, 2.5)])
    kept = [i for i, r in enumerate(schedule(args.load * total, args.seconds, args.seed)) if r.at >= args.start]
    for policy in args.policies.split(","):
        ttfts, places = race(policy, [1.0, 2.5], args.load, args.seconds, args.seed)
        ttft = [ttfts[i] for i in kept]
        slow = sum(places[i].endswith("x2.5") for i in kept) / len(kept)
        print(f"{policy:<6} p50 {quantile(ttft, 0.5) * 1e3:7.0f}  p95 {quantile(ttft, 0.95) * 1e3:7.0f}  "
              f"p99 {quantile(ttft, 0.99) * 1e3:7.0f} ms  goodput {sum(t <= 1.0 for t in ttft) / len(ttft):6.1%}  "
              f"slow {slow:.0%}")


if __name__ == "__main__":
    main()
