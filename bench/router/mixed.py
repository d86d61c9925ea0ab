"""Mixed GPUs: one backend 2.5x slower; open-loop Poisson arrivals at ~80 % of total capacity."""

from __future__ import annotations

import random
import time

from .load import quantile, run_streams
from .procs import fake, swarm_router
from .scrape import backend_shares

__all__ = ["GOAL_RATIO", "mixed"]

GOAL_RATIO = 0.7  # p95 TTFT of the load strategy vs round-robin


def mixed(seconds: float, results: dict[str, float]) -> None:
    fast = {"ttft": 0.02, "per_token": 0.01, "tokens": 20, "seqs": 8}
    slow = {"ttft": 0.05, "per_token": 0.025, "tokens": 20, "seqs": 8}
    capacity = sum(c["seqs"] / (c["ttft"] + (c["tokens"] - 1) * c["per_token"]) for c in (fast, slow))
    rate = 0.8 * capacity
    rng = random.Random(4)
    arrivals, t = [], 0.0
    while t < seconds:
        t += rng.expovariate(rate)
        arrivals.append(t)
    print(f"\nmixed GPUs: fast backend (TTFT 20 ms, 10 ms/token, 20 tokens, max_num_seqs 8) + one 2.5x slower; "
          f"capacity {capacity:.1f} req/s, offered {rate:.1f} req/s (80 %), {len(arrivals)} streams per strategy")
    p95: dict[str, float] = {}
    for strategy in ("round_robin", "load"):
        with (fake(fast["ttft"], fast["per_token"], int(fast["tokens"]), int(fast["seqs"])) as f_url,
              fake(slow["ttft"], slow["per_token"], int(slow["tokens"]), int(slow["seqs"])) as s_url,
              swarm_router([f_url, s_url], strategy) as (url, _)):
            time.sleep(1.5)  # let the router scrape both backends once
            res = run_streams(url, arrivals=arrivals)
            shares = backend_shares(url)
        p95[strategy] = quantile(res.ttfts, 0.95) * 1e3
        print(f"  {strategy:<12} TTFT p50 {quantile(res.ttfts, 0.5) * 1e3:8.1f} ms   p95 {p95[strategy]:8.1f} ms"
              f"   p99 {quantile(res.ttfts, 0.99) * 1e3:8.1f} ms   errors {res.errors}   "
              f"fast/slow share {shares.get('b0', 0):.0%}/{shares.get('b1', 0):.0%}")
    ratio = p95["load"] / p95["round_robin"] if p95["round_robin"] else float("nan")
    results["mixed_ratio"] = ratio
    print(f"  p95 TTFT ratio load/round-robin = {ratio:.3f} (goal <= {GOAL_RATIO})")
