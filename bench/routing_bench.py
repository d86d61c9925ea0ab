"""Routing quality on mixed GPUs: swarm-router vs the Rust ``vllm-router`` on identical schedules.

Two simulated vLLM backends (continuous batching, chunked prefill, tokens streamed one by
one over real HTTP on 127.0.0.1), the second 2.5x slower per step; open-loop Poisson load
at 50/80/95 % of their combined capacity with a short/long prompt mix; every router replays
the same schedule per load and seed against freshly started backends. Prints TTFT
p50/p95/p99, E2E p95, goodput (TTFT <= 1 s), backend shares and the highest 10 s-window
share sent to the slow GPU, then swarm-router's ratios against the best peer.

    .venv/bin/python bench/routing_bench.py [--quick] [--seeds 3] [--seconds 30]

``--routers`` may add ``swarm-early`` (swarm-router with late binding off) and ``swarm-no-affinity``
(prefix affinity off) beside the peers.
``--sessions N`` replaces the mix by turns of N sessions, each sharing a 1,000-3,000-token prefix
(a long system prompt, a document under discussion), on engines that cache those prefixes
(``--prefix-cache``, as vLLM's prefix caching): what prefix affinity buys, over real HTTP. Load is
then against the engines' capacity without caching, so above 100 % is meaningful:

    .venv/bin/python bench/routing_bench.py --sessions 30 --loads 0.8,1.0,1.2 \
        --routers swarm,vllm-router:power_of_two,vllm-router:cache_aware

Time scale: steps are ~12-20 ms on the fast engine (a 7-8B model on an RTX 4090 at batch
8), so seconds are real seconds and the 1 s goodput threshold needs no scaling. The vLLM
router is installed into bench/.venv-peers on first use (bench/rust_router.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict

from routing.engine import EngineSpec
from routing.load import replay
from routing.peers import LOAD_CPU, SWARM, router, simulated_backends
from routing.report import GOALS, GOODPUT_TTFT_S, Summary, best_peer, goals_met, ratio_table, ratios, summarize
from routing.workload import (
    LONG_SHARE,
    SESSION_CACHE_TOKENS,
    SESSION_PREFIX,
    SESSION_QUESTION,
    combined_capacity,
    schedule,
)

SLOWDOWNS = [1.0, 2.5]
ROUTERS = ["swarm", "vllm-router:power_of_two", "vllm-router:cache_aware", "vllm-router:round_robin"]
Cell = tuple[float, int, dict[str, Summary]]  # load, seed, every router's summary
SETTLE_S = 1.5  # every router gets the same idle time after start (swarm-router scrapes once)
LOG_TAIL = 3000  # characters of a router's log printed after a run with failed requests


def run_one(name: str, rate: float, seconds: float, warmup: float, seed: int, slow_tag: str, sessions: int = 0,
            prefix_cache_tokens: int = 0) -> Summary:
    import uvloop

    plan = schedule(rate, warmup + seconds, seed, sessions)
    with simulated_backends(SLOWDOWNS, prefix_cache_tokens) as urls, router(name, urls) as (url, key, log):
        time.sleep(SETTLE_S)
        results = uvloop.run(replay(url, plan, key))
        summary = summarize(results, slow_tag, warmup, warmup + seconds)
        if summary.errors and (text := log().strip()):  # keep what the router said: the run is not repeatable
            sys.stderr.write(f"{name}: {summary.errors} requests failed; the last of its log:\n{text[-LOG_TAIL:]}\n")
    return summary


def _interrupted(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def fmt_ms(v: float) -> str:
    return "fail" if math.isinf(v) else f"{v * 1e3:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 12 s per run (noisier)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per load (default 3, --quick 1)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per run (default 30)")
    parser.add_argument("--loads", default="0.5,0.8,0.95", help="fractions of combined capacity")
    parser.add_argument("--routers", default=",".join(ROUTERS))
    parser.add_argument("--json", metavar="FILE", help="also write every run's summary as JSON")
    parser.add_argument("--ratios-from", metavar="FILE", help="print the ratio tables of a --json file and exit")
    parser.add_argument("--sessions", type=int, default=0,
                        help="turns of this many sessions sharing prefixes instead of the short/long mix "
                             "(give it to --ratios-from too)")
    parser.add_argument("--prefix-cache", type=int, default=SESSION_CACHE_TOKENS, metavar="TOKENS",
                        help="with --sessions: prefix tokens each engine keeps cached")
    args = parser.parse_args()
    if args.sessions < 0 or args.prefix_cache < 0:
        parser.error("--sessions and --prefix-cache must be at least 0")
    if args.ratios_from:
        with open(args.ratios_from) as f:
            saved = json.load(f)
        total, each = combined_capacity([EngineSpec(slowdown=s) for s in SLOWDOWNS], args.sessions)
        loaded = [(entry["load"], entry["seed"], {n: Summary(**v) for n, v in entry["runs"].items()})
                  for entry in saved]
        print_ratios(loaded, each[1] / total)
        return
    signal.signal(signal.SIGTERM, _interrupted)  # unwind the context managers: no server left behind
    seeds = args.seeds or (1 if args.quick else 3)
    seconds = args.seconds or (12.0 if args.quick else 30.0)
    warmup = 3.0 if args.quick else 5.0
    loads = [float(x) for x in args.loads.split(",")]
    names = args.routers.split(",")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > LOAD_CPU:
        os.sched_setaffinity(0, {LOAD_CPU})
    total, each = combined_capacity([EngineSpec(slowdown=s) for s in SLOWDOWNS], args.sessions)
    slow_cap = each[1] / total
    slow_tag = f"-x{SLOWDOWNS[1]:g}"
    cache = args.prefix_cache if args.sessions else 0
    mix = (f"turns of {args.sessions} sessions: a {SESSION_PREFIX[0]}-{SESSION_PREFIX[1]}-token shared prefix and a "
           f"{SESSION_QUESTION[0]}-{SESSION_QUESTION[1]}-token question; engines cache {cache} prefix tokens "
           f"(capacity counted without the cache)" if args.sessions else
           f"{LONG_SHARE:.0%} long prompts (1000-3000 tokens), the rest 40-250")
    print(f"routing bench: {os.cpu_count()} CPUs; engines x{SLOWDOWNS[0]:g} / x{SLOWDOWNS[1]:g}: "
          f"capacity {each[0]:.2f} + {each[1]:.2f} = {total:.2f} req/s (slow share {slow_cap:.0%}); "
          f"{mix}; 16-48 output tokens; {seeds} seed(s) x {seconds:g} s measured after {warmup:g} s warm-up\n")
    results: list[Cell] = []
    for load in loads:
        for seed in range(1, seeds + 1):
            rate = load * total
            print(f"load {load:.0%} ({rate:.1f} req/s), seed {seed}")
            print(f"  {'router':<26}{'TTFT p50':>9}{'p95':>7}{'p99':>7}{'E2E p95':>9}{'goodput':>9}"
                  f"{'slow':>6}{'slow 10s max':>13}{'errors':>7}   (ms)")
            runs: dict[str, Summary] = {}
            for name in names:
                s = run_one(name, rate, seconds, warmup, seed, slow_tag, args.sessions, cache)
                runs[name] = s
                print(f"  {name:<26}{fmt_ms(s.ttft_p50):>9}{fmt_ms(s.ttft_p95):>7}{fmt_ms(s.ttft_p99):>7}"
                      f"{fmt_ms(s.e2e_p95):>9}{s.goodput:>9.1%}{s.slow_share:>6.0%}{s.slow_window_max:>13.0%}"
                      f"{s.errors:>7}", flush=True)
                if s.failures:
                    print(f"  {'':<26}failed: {s.failures}", flush=True)
            results.append((load, seed, runs))
            print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"load": load, "seed": seed, "runs": {n: asdict(s) for n, s in runs.items()}}
                       for load, seed, runs in results], f, indent=1)
    print_ratios(results, slow_cap)


def print_ratios(results: list[Cell], slow_cap: float) -> None:
    """For each swarm-router variant run: two tables, against the best peer (highest goodput, then
    lowest p95) and per metric against any peer, and the goal verdict."""
    variants = [v for v in SWARM if any(v in runs for _, _, runs in results)]
    if not variants or not any(n not in SWARM for _, _, runs in results for n in runs):
        return
    print(f"goodput = share of requests with TTFT <= {GOODPUT_TTFT_S:g} s; 'slow win' = highest 10 s-window share "
          f"sent to the slow GPU / its capacity share ({slow_cap:.0%})\n")
    for variant in variants:
        met_all = True
        for per_metric in (False, True):
            rows = []
            for load, seed, runs in results:
                peers = {n: s for n, s in runs.items() if n not in SWARM}
                if variant not in runs or not peers:
                    continue
                r = ratios(runs[variant], peers, slow_cap, per_metric)
                met_all &= per_metric or goals_met(load, r)
                rows.append((load, seed, "best value of any peer" if per_metric else best_peer(peers), r))
            print(f"{variant} / " + ("the best value any peer reached, metric by metric (stricter)" if per_metric
                                     else "best peer (highest goodput, then lowest p95 TTFT)"))
            print("\n".join(ratio_table(rows)) + "\n")
        print(f"{variant}: goals vs the best peer (p95 and p99 <= {GOALS['tail']}x at 80/95 %, goodput >= "
              f"{GOALS['goodput']}x, p50 <= {GOALS['p50']}x, slow window <= {GOALS['window']}x): "
              f"{'all met' if met_all else 'NOT all met'}\n")

if __name__ == "__main__":
    main()
