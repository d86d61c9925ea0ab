"""What could any router reach on this schedule? A search that knows every request in advance.

A router decides each request from the past. This search sees the whole schedule at once and
chooses, for every request, its engine and (with ``--moves order``) its admission rank: the
order in which an engine admits waiting requests, which is what a router that holds requests
and releases them later controls. Whatever it finds is a schedule the engine model really runs
(``replay``), so a result that meets the goals proves they are reachable on that seed; a search
that does not meet them is evidence, not proof, that they are out of reach for that kind of
router (simulated annealing finds good local optima, not the best).

The goals are scored as one number, ``max(p95 ratio, p99 ratio, p50 ratio × 0.7 / 1.1)``
against the better peer (``jsq`` or ``rr``, as ``offline`` compares): at most 0.7 means the
tail and median goals hold. A small term for the mean of the slowest tenth of the requests
breaks ties so the search can see progress between two quantile ranks. ``--cap`` adds the
constraint that no request waits longer than the peer's slowest one, so the search cannot
meet the percentiles by starving a few requests past the peer's worst.

    python -m routing.bound --load 0.8 --seeds 2 --moves engine   (from bench/; ~5 min a seed)
    python -m routing.bound --load 0.8 --seeds 2,3 --moves order --cap
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .engine import Engine, EngineSpec, Seq
from .load import Result
from .offline import PEERS, race
from .report import GOALS, Summary, best_peer, goals_met, ratios, summarize
from .workload import Request, combined_capacity, offered_rate, schedule

__all__ = ["Plan", "Scored", "anneal", "replay", "scorer"]

SLOWDOWNS = (1.0, 2.5)
MOVES = ("engine", "order")
RANK_STEP = 8.0  # an order move shifts a request's admission rank by up to this many arrivals
TIE_WEIGHT = 0.02  # weight of the slowest tenth's mean TTFT (in peer p95s) in the score


@dataclass(frozen=True, slots=True)
class Plan:
    """Every request's engine (index into the slowdowns) and admission rank (lowest first)."""

    engine: tuple[int, ...]
    rank: tuple[float, ...]


def replay(requests: Sequence[Request], plan: Plan, slowdowns: Sequence[float] = SLOWDOWNS) -> list[Result]:
    """Each request sent at its arrival to its planned engine; engines admit by rank, ties by arrival."""
    if len(plan.engine) != len(requests) or len(plan.rank) != len(requests):
        raise ValueError(f"plan: {len(plan.engine)} engines and {len(plan.rank)} ranks for {len(requests)} requests")
    engines = [Engine(EngineSpec(slowdown=s)) for s in slowdowns]
    if bad := sorted({e for e in plan.engine if not 0 <= e < len(engines)}):
        raise ValueError(f"plan: engine index {bad[0]} out of range for {len(engines)} engines")
    ttft = [math.inf] * len(requests)
    e2e = [math.inf] * len(requests)
    stepping = [False] * len(engines)
    events: list[tuple[float, int, int, int]] = []  # (time, tie, 0 arrive / 1 step end, index)
    tie = itertools.count()
    for i, req in enumerate(requests):
        heapq.heappush(events, (req.at, next(tie), 0, i))
    now = 0.0

    def step(k: int) -> None:
        duration = engines[k].plan()
        stepping[k] = duration > 0
        if stepping[k]:
            heapq.heappush(events, (now + duration, next(tie), 1, k))

    def tokens(i: int) -> Callable[[int, bool], None]:
        def on_token(n: int, last: bool) -> None:
            if n == 1:
                ttft[i] = now - requests[i].at
            if last:
                e2e[i] = now - requests[i].at
        return on_token

    while events:
        now, _, kind, x = heapq.heappop(events)
        if kind == 0:
            k = plan.engine[x]
            engines[k].add(Seq(requests[x].prompt_tokens, requests[x].output_tokens, rank=plan.rank[x],
                               on_token=tokens(x)))
            if not stepping[k]:
                step(k)
        else:
            engines[x].finish()
            step(x)
    names = [f"b{k}-x{s:g}" for k, s in enumerate(slowdowns)]
    return [Result(req.at, req.prompt_tokens, ttft[i], e2e[i], names[plan.engine[i]], math.isfinite(ttft[i]))
            for i, req in enumerate(requests)]


@dataclass(frozen=True, slots=True)
class Scored:
    """A plan's score (see the module), the run's statistics and its slowest TTFT."""

    score: float
    summary: Summary
    worst_s: float


def scorer(peer: Summary, peer_worst_s: float, start: float, end: float, cap: bool,
           slow: str = "x2.5") -> Callable[[list[Result]], Scored]:
    """The goals as one number (at most 0.7: tail and median goals met), plus the tie-breaker."""
    median_scale = GOALS["tail"] / GOALS["p50"]

    def score(results: list[Result]) -> Scored:
        s = summarize(results, slow, start, end)
        ttfts = sorted(r.ttft for r in results if start <= r.at < end)
        tenth = ttfts[len(ttfts) * 9 // 10:] or [0.0]
        worst = ttfts[-1] if ttfts else 0.0
        terms = [s.ttft_p95 / peer.ttft_p95, s.ttft_p99 / peer.ttft_p99, s.ttft_p50 / peer.ttft_p50 * median_scale]
        if cap:
            terms.append(worst / peer_worst_s * GOALS["tail"])
        return Scored(max(terms) + TIE_WEIGHT * sum(tenth) / len(tenth) / peer.ttft_p95, s, worst)

    return score


TEMPERATURE = (0.01, 0.0003)  # the score differences accepted at the start and at the end, about


def anneal(requests: Sequence[Request], start: Plan, score: Callable[[list[Result]], Scored], moves: str,
           iterations: int, rng: random.Random) -> tuple[Plan, Scored]:
    """Simulated annealing from ``start``: each step moves one request to the other engine or (``order``)
    shifts its rank; returns the best plan seen and its score."""
    if moves not in MOVES:
        raise ValueError(f"moves: {moves!r} is not one of {', '.join(MOVES)}")
    engine, rank = list(start.engine), list(start.rank)
    engines = len(SLOWDOWNS)
    current = best = score(replay(requests, start))
    best_plan = start
    hot, cold = TEMPERATURE
    cooling = (cold / hot) ** (1 / max(1, iterations))
    t = hot
    for _ in range(iterations):
        i = rng.randrange(len(requests))
        before = engine[i], rank[i]
        if moves == "engine" or rng.random() < 0.5:
            engine[i] = (engine[i] + rng.randrange(1, engines)) % engines
        else:
            rank[i] += rng.uniform(-RANK_STEP, RANK_STEP)
        plan = Plan(tuple(engine), tuple(rank))
        trial = score(replay(requests, plan))
        if trial.score <= current.score or rng.random() < math.exp((current.score - trial.score) / t):
            current = trial
            if trial.score < best.score:
                best, best_plan = trial, plan
        else:
            engine[i], rank[i] = before
        t *= cooling
    return best_plan, best


def _peer(load: float, seed: int, seconds: float, start: float) -> tuple[Summary, float]:
    runs = {name: race(name, list(SLOWDOWNS), load, seconds, seed) for name in PEERS}
    summaries = {name: summarize(res, "x2.5", start, seconds) for name, res in runs.items()}
    name = best_peer(summaries)
    worst = max(r.ttft if r.ok else math.inf for r in runs[name] if start <= r.at < seconds)
    return summaries[name], worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=float, default=0.8, help="fraction of combined capacity")
    parser.add_argument("--seeds", default="2", help="comma-separated schedule seeds")
    parser.add_argument("--seconds", type=float, default=35.0)
    parser.add_argument("--from", dest="start", type=float, default=5.0, help="count requests sent from here on")
    parser.add_argument("--moves", choices=MOVES, default="order",
                        help="engine: choose engines only (early binding, first come first served); "
                             "order: engines and admission order (late binding)")
    parser.add_argument("--iterations", type=int, default=60000)
    parser.add_argument("--cap", action="store_true", help="no request may wait longer than the peer's slowest")
    args = parser.parse_args()
    total, each = combined_capacity([EngineSpec(slowdown=s) for s in SLOWDOWNS])
    for seed in (int(s) for s in args.seeds.split(",")):
        requests = schedule(offered_rate(list(SLOWDOWNS), args.load), args.seconds, seed)
        peer, peer_worst = _peer(args.load, seed, args.seconds, args.start)
        greedy = race("oracle", list(SLOWDOWNS), args.load, args.seconds, seed)
        start = Plan(tuple(0 if r.backend.endswith("x1") else 1 for r in greedy),
                     tuple(float(i) for i in range(len(requests))))
        score = scorer(peer, peer_worst, args.start, args.seconds, args.cap)
        plan, found = anneal(requests, start, score, args.moves, args.iterations, random.Random(seed))
        r = ratios(found.summary, {"peer": peer}, each[1] / total, per_metric=False)
        print(f"{args.load:.0%} seed {seed} moves {args.moves}{' cap' if args.cap else ''}: "
              f"from the greedy oracle's {score(replay(requests, start)).score:.2f} to {found.score:.2f}  "
              f"p50 {r['p50']:.2f} p95 {r['p95']:.2f} p99 {r['p99']:.2f} goodput {r['goodput']:.2f} "
              f"window {r['window']:.2f}  slowest {found.worst_s:.2f} s (peer {peer_worst:.2f} s)  "
              f"{'goals met' if goals_met(args.load, r) else 'goals missed'}", flush=True)
        slowest = sorted((res.ttft for res in replay(requests, plan) if args.start <= res.at < args.seconds),
                         reverse=True)[:20]
        print("  the 20 slowest TTFTs (s): " + " ".join(f"{t:.2f}" for t in slowest), flush=True)


if __name__ == "__main__":
    main()
