"""The routing race in virtual time: engines, router state and arrivals as one discrete-event loop.

No HTTP, no CPU noise: a policy change can be judged in seconds before the real-HTTP bench.
``swarm-late`` is swarm-router as configured by default: its strategy, its estimator (virtual
clock, scrapes every ``scrape_s``, the stream events it would relay) and late binding as its
pool does it (``release.next_release``); ``swarm`` is the same binding early
(``late_binding.enabled: false``); ``oracle`` is the same greedy choice made from the engines' exact state (each
candidate's engine copied and run forward until this request's first token): the ceiling of
any TTFT predictor; ``clairvoyant`` and ``sampled`` look ahead (``lookahead.py``): the first
knows the schedule's next arrivals, the second only their distribution; ``late`` holds
requests in the router while every engine is full and releases them jointly when one has room
(exact state, same rollout); ``jsq`` is join-shortest-queue on the router's own in-flight counts (what
``power_of_two`` does with two backends), ``rr`` is round-robin. Ratios are printed against the
better of ``jsq`` and ``rr`` with the live bench's goals. ``--vllm-priority`` lets the router
under test order vLLM's waiting queue by prompt size (the peers keep first come, first served).

    python -m routing.offline --load 0.8 --seeds 1 --seconds 300   (from bench/)
    python -m routing.offline --load 0.8,0.95 --seeds 1-6 --seconds 35 --from 5   (the bench's window)
    python -m routing.offline --sessions 30 --load 1.2 --seeds 1-3 --seconds 65 --from 5 --policies swarm-late
        [--no-affinity]   (turns of sessions sharing prefixes, engines with a prefix cache: affinity's gain)
    python -m routing.offline --load 0.8,0.95 --seeds 1-40 --seconds 35 --from 5 --policies swarm-late
        --exact jobs,model   (swarm-router with some of its estimates exact: ``exact.py``)
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from swarm_runtime.router.config import AffinityConfig
from swarm_runtime.router.estimator import EstimatedLoad, LoadEstimator
from swarm_runtime.router.prefixes import Warmth, prompt_blocks
from swarm_runtime.router.release import GREEDY, RELEASE_WINDOW, hold, next_release
from swarm_runtime.router.routing import RequestKey, make_load_strategy
from swarm_runtime.vllm_metrics import VllmMetrics

from .engine import PRIORITIES, Engine, EngineSpec, Seq
from .estimates import Watch
from .exact import ExactEstimator, parse_parts
from .load import Result
from .lookahead import COSTS, Arrival, EngineState, greedy_choice, joint_release, rollout_choice, sampled_futures
from .report import Summary, goals_met, ratio_table, ratios, summarize
from .workload import SESSION_CACHE_TOKENS, Request, combined_capacity, offered_rate, prompt_text, schedule

__all__ = ["race"]

AFFINITY = AffinityConfig()  # the router's defaults; only --sessions prompts share prefixes, others are never warm
LATE_BUFFER = 1  # ``late`` keeps this many requests queued in each engine beyond its running ones


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


@dataclass(frozen=True)
class Lookahead:
    """How ``clairvoyant`` and ``sampled`` look ahead: window, cost of a TTFT, sampled futures per decision."""

    horizon_s: float = 3.0
    cost: str = "square"
    samples: int = 16


@dataclass(frozen=True)
class Sessions:
    """A workload of sessions sharing prefixes (``workload.schedule``), engines that cache them
    (vLLM's prefix caching, ``cache_tokens`` of them), and whether swarm-router uses affinity."""

    count: int
    cache_tokens: int = SESSION_CACHE_TOKENS
    affinity: bool = True


def _arrival(req: Request) -> Arrival:
    return req.at, req.prompt_tokens, req.output_tokens


def race(policy: str, slowdowns: list[float], load: float, seconds: float, seed: int,
         scrape_s: float = 0.5, look: Lookahead = Lookahead(), priority: str | None = None,
         sessions: Sessions | None = None, exact: frozenset[str] = frozenset(),
         watch: Watch | None = None) -> list[Result]:
    """Every request of the schedule as a client would have seen it, in arrival order; ``priority``
    names how the router sets vLLM's request priority (:data:`engine.PRIORITIES`), None for none;
    ``sessions`` replaces the short/long mix by turns of sessions that share prefixes; ``exact``
    names the parts of swarm-router's engine view taken from the engine itself (:data:`exact.PARTS`);
    ``watch`` collects how close the router's own estimates come (:mod:`estimates`; not with ``exact``)."""
    now = 0.0
    clock: Callable[[], float] = lambda: now  # noqa: E731 -- the estimators read the loop's virtual time
    rank = PRIORITIES[priority] if priority else None
    cache = sessions.cache_tokens if sessions else 0
    specs = [EngineSpec(slowdown=s, priority=rank, prefix_cache_tokens=cache) for s in slowdowns]
    engines = [Engine(spec) for spec in specs]

    def estimator(i: int) -> LoadEstimator:
        budget = specs[i].max_batched_tokens
        if exact:
            return ExactEstimator(clock, budget, lambda: (engines[i], backends[i].busy_until), exact)
        return watch.estimator(clock, budget, i) if watch is not None else LoadEstimator(clock, budget)

    backends = [_Backend(f"b{i}-x{spec.slowdown:g}", engines[i], estimator(i)) for i, spec in enumerate(specs)]
    names = [b.name for b in backends]
    count = sessions.count if sessions else 0
    rate = offered_rate(slowdowns, load, count)
    plan = schedule(rate, seconds, seed, count)
    affinity = sessions is None or sessions.affinity
    strategy = make_load_strategy(AFFINITY.slack)
    warmth = Warmth(AFFINITY, clock)  # what the router's pool knows of the engines' prefix caches
    rng = random.Random(seed)
    ttft = [-1.0] * len(plan)
    e2e = [-1.0] * len(plan)
    where = [""] * len(plan)
    cost = COSTS[look.cost]
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

    def send(b: _Backend, idx: int) -> None:
        req = plan[idx]
        where[idx] = b.name
        b.est.sent(idx + 1, warmth.bind(bare(idx), b.name), req.output_tokens, b.in_flight)  # as the pool binds
        b.in_flight += 1
        sent_at = now

        def on_token(n: int, last: bool, b: _Backend = b, i: int = idx, t0: float = sent_at) -> None:
            b.est.streamed(i + 1, 1)
            if n == 1:
                ttft[i] = now - plan[i].at
                b.est.first_token(i + 1, now - t0)
            if last:
                e2e[i] = now - plan[i].at
                b.in_flight -= 1
                b.est.finished(i + 1)

        b.engine.add(Seq(req.prompt_tokens, req.output_tokens, on_token=on_token,
                         prefix=req.tag if req.prefix_tokens else None, prefix_tokens=req.prefix_tokens))
        if b.busy_until is None:
            step(b)

    def states() -> list[EngineState]:
        return [(b.engine, b.busy_until) for b in backends]

    # each prompt's block names as the router's proxy hashes its text (a session's turns share their prefix's)
    blocks = [prompt_blocks(prompt_text(req), AFFINITY.prefix_chars) if affinity else () for req in plan]

    def bare(idx: int) -> RequestKey:
        req = plan[idx]
        return RequestKey(req.tag if affinity else None, idx + 1, req.prompt_tokens, req.output_tokens,
                          blocks=blocks[idx])

    def key(idx: int) -> RequestKey:
        return warmth.warmed(bare(idx), names)

    def choose(idx: int) -> _Backend:
        req = plan[idx]
        if policy in ("swarm", "swarm-late"):
            chosen = strategy(backends, key(idx))
            assert isinstance(chosen, _Backend)
            return chosen
        if policy == "oracle":
            return backends[greedy_choice(states(), req.prompt_tokens, now)]
        if policy in ("clairvoyant", "sampled"):
            if policy == "clairvoyant":
                futures = [[_arrival(r) for r in itertools.takewhile(lambda r: r.at < now + look.horizon_s,
                                                                      plan[idx + 1:])]]
            else:
                futures = sampled_futures(rng, rate, now, look.horizon_s, look.samples)
            return backends[rollout_choice(states(), now, _arrival(req), futures, cost)]
        if policy == "jsq":
            low = min(b.in_flight for b in backends)
            return rng.choice([b for b in backends if b.in_flight == low])
        if policy == "rr":
            return backends[idx % len(backends)]
        raise ValueError(f"unknown policy {policy!r}")

    held: list[int] = []  # ``late`` and ``swarm-late``: requests waiting in the router, in arrival order

    def release_exact() -> None:  # ``late``
        def has_room(e: Engine) -> bool:
            return len(e.running) + len(e.waiting) < e.spec.max_num_seqs + LATE_BUFFER

        while held and (rooms := [k for k, b in enumerate(backends) if has_room(b.engine)]):
            k, j = joint_release(states(), now, [_arrival(plan[i]) for i in held], rooms, cost)
            send(backends[j], held.pop(k))

    def release_as_router() -> None:  # ``swarm-late``: what the router's pool does with its held requests
        while held:
            chosen = next_release(backends, [hold(now - plan[i].at, key(i), backends, AFFINITY.slack)
                                             for i in held[:RELEASE_WINDOW]], LATE_BUFFER)
            if chosen is None:
                return
            k, j = chosen
            idx = held.pop(k)
            send(choose(idx) if j == GREEDY else backends[j], idx)

    release = release_as_router if policy == "swarm-late" else release_exact
    while events:
        now, _, kind, idx = heapq.heappop(events)
        if kind == "arrive" and policy in ("late", "swarm-late"):
            held.append(idx)
            release()
        elif kind == "arrive":
            send(choose(idx), idx)
        elif kind == "step":
            b = backends[idx]
            b.engine.finish()
            if b.busy_until is not None and b.busy_until <= now:
                step(b)
            if held:
                release()
        else:
            for b in backends:
                e = b.engine
                m = VllmMetrics(float(len(e.running)), float(len(e.waiting)), 0.0, 0.0,
                                float(e.prompt_tokens_total), float(e.generation_tokens_total),
                                None, None, None, None, float(e.prefix_cache_hits_total))
                b.est.scraped(m, b.in_flight, now)
            if held:
                release()
            if now < last_arrival or any(b.engine.busy() for b in backends):
                heapq.heappush(events, (now + scrape_s, next(tie), "scrape", -1))
    return [Result(req.at, req.prompt_tokens, ttft[i], e2e[i], where[i], ttft[i] >= 0) for i, req in enumerate(plan)]


PEERS = ("jsq", "rr")  # the offline stand-ins for vllm-router's power_of_two and round_robin
POLICIES = ("swarm", "swarm-late", "oracle", "clairvoyant", "sampled", "late", *PEERS)
ESTIMATING = ("swarm", "swarm-late")  # the policies that route on swarm-router's estimates


def _seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", default="0.8", help="comma-separated fractions of combined capacity")
    parser.add_argument("--seeds", type=_seeds, default=[1], help="N or N-M")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--from", dest="start", type=float, default=0.0, help="count requests sent from here on")
    parser.add_argument("--policies", default="swarm,oracle")
    parser.add_argument("--horizon", type=float, default=Lookahead.horizon_s, help="look-ahead window, seconds")
    parser.add_argument("--cost", choices=sorted(COSTS), default=Lookahead.cost, help="look-ahead cost of a TTFT")
    parser.add_argument("--samples", type=int, default=Lookahead.samples, help="sampled futures per decision")
    parser.add_argument("--vllm-priority", choices=sorted(PRIORITIES),
                        help="the router under test sets vLLM's request priority (the peers do not)")
    parser.add_argument("--sessions", type=int, default=0,
                        help="turns of this many sessions sharing prefixes instead of the short/long mix; "
                             "--load is then against the engines' capacity without prefix caching")
    parser.add_argument("--prefix-cache", type=int, default=Sessions(0).cache_tokens,
                        help="with --sessions: prompt tokens of prefixes each engine keeps cached")
    parser.add_argument("--no-affinity", action="store_true", help="with --sessions: swarm-router without affinity")
    parser.add_argument("--exact", default="", metavar="PARTS",
                        help="swarm-router's view takes these parts from the engines' exact state: comma-separated "
                             "jobs, model, slots, under, residual, or all (routing/exact.py)")
    parser.add_argument("--estimates", action="store_true",
                        help="also print, per policy and engine, how far swarm-router's predicted TTFT and fitted "
                             "prefill cost are from the engine's (routing/estimates.py)")
    args = parser.parse_args()
    try:
        exact = parse_parts(args.exact)
    except ValueError as err:
        parser.error(f"--exact: {err}")
    if args.estimates and exact:
        parser.error("--estimates measures the router's own estimates: leave out --exact")
    if args.sessions < 0 or args.prefix_cache < 0:
        parser.error("--sessions and --prefix-cache must be at least 0")
    sessions = Sessions(args.sessions, args.prefix_cache, not args.no_affinity) if args.sessions else None
    policies = args.policies.split(",")
    if unknown := [p for p in policies if p not in POLICIES]:
        parser.error(f"--policies: unknown {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    look = Lookahead(args.horizon, args.cost, args.samples)
    specs = [EngineSpec(slowdown=s) for s in (1.0, 2.5)]
    total, each = combined_capacity(specs, args.sessions)
    rows: dict[str, list[tuple[float, int, str, dict[str, float]]]] = {}
    watches = {policy: Watch(args.start) for policy in policies if policy in ESTIMATING} if args.estimates else {}
    for load in (float(x) for x in args.load.split(",")):
        for seed in args.seeds:
            runs: dict[str, Summary] = {}
            for policy in (*policies, *PEERS):
                priority = None if policy in PEERS else args.vllm_priority
                results = race(policy, [1.0, 2.5], load, args.seconds, seed, look=look, priority=priority,
                               sessions=sessions, exact=frozenset() if policy in PEERS else exact,
                               watch=watches.get(policy))
                runs[policy] = s = summarize(results, "x2.5", args.start, args.seconds)
                print(f"{load:4.0%} seed {seed}  {policy:<12} p50 {s.ttft_p50 * 1e3:6.0f}  "
                      f"p95 {s.ttft_p95 * 1e3:6.0f}  p99 {s.ttft_p99 * 1e3:6.0f} ms  goodput {s.goodput:6.1%}  "
                      f"slow {s.slow_share:.0%}", flush=True)
            peers = {name: runs[name] for name in PEERS}
            for policy in policies:
                rows.setdefault(policy, []).append((load, seed, "jsq/rr", ratios(runs[policy], peers, each[1] / total,
                                                                                   per_metric=False)))
    for policy, table in rows.items():
        met = sum(goals_met(load, r) for load, _, _, r in table)
        print(f"\n{policy}: goals met in {met} of {len(table)} cells")
        print("\n".join(ratio_table(table)))
        if policy in watches:
            print(f"\n{policy}: swarm-router's estimates against the engines'")
            print("\n".join(watches[policy].report(specs)))


if __name__ == "__main__":
    main()
