"""The path users actually take, on the configs the plan renders, in one run:

    direct      client -> fake vLLM
    router      client -> swarm-router -> fake vLLM
    gateway     client -> LiteLLM (1 worker) -> swarm-router -> fake vLLM

Prints the TTFT each hop adds at c=1 (p50/p99, streaming), then sweeps concurrency on the
gateway path to find where one LiteLLM worker saturates (throughput stops growing), with the
p99 it adds there, and the workers that implies for the seeds' 130 req/s on oracle's cores
(`swarm.services.litellm_config.workers_for`, the rendered default).

Everything shares this machine's cores (client, fakes, router, LiteLLM), so absolute numbers
are pessimistic; ratios and added milliseconds are what compare.

    .venv/bin/python bench/gateway_path.py [--requests 200] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarm.plan.builder import build_plan
from swarm.services.litellm_config import (
    PER_WORKER_RPS,
    TARGET_RPS,
    WORKER_HEADROOM,
    workers_for,
)
from swarm.stack_config import build_spec, read_stack_file
from tests.services.loopback import GatewayPath, gateway_path

REPO = Path(__file__).resolve().parents[1]
MODEL = "mistral-7b"
TTFT_GOAL_MS = 15.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def ttft(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True}
    start = time.perf_counter()
    async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data:") and b'"content"' in line:
                first = time.perf_counter() - start
                async for _ in response.content:
                    pass
                return first
    raise RuntimeError(f"no content chunk from {url}")


async def one(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    start = time.perf_counter()
    async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as response:
        await response.read()
        response.raise_for_status()
    return time.perf_counter() - start


async def load(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Closed loop: `concurrency` clients for `seconds`; (req/s, latencies)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def client() -> None:
            while time.perf_counter() < deadline:
                latencies.append(await one(session, url, headers))
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, latencies


async def unloaded(paths: dict[str, tuple[str, dict[str, str]]], requests: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in paths}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for url, headers in paths.values():  # warm-up
            for _ in range(10):
                await ttft(session, url, headers)
        for _ in range(requests):  # interleaved, so drift hits every path alike
            for name, (url, headers) in paths.items():
                results[name].append(await ttft(session, url, headers))
    return results


def run(path: GatewayPath, requests: int, seconds: float, cores: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {path.router_key}"}
    paths = {
        "direct": (path.vllm_url("thanos-backup"), {}),
        "router": (path.router_url, auth),
        "gateway": (path.gateway_url, {"Authorization": f"Bearer {path.master_key}"}),
    }
    ms = {name: [v * 1000 for v in values] for name, values in asyncio.run(unloaded(paths, requests)).items()}
    print(f"\nTTFT at c=1, streaming, {requests} requests per path (ms):")
    print(f"  {'path':8} {'p50':>8} {'p99':>8} {'added p50':>10} {'added p99':>10}")
    for name, values in ms.items():
        print(f"  {name:8} {pct(values, 50):8.2f} {pct(values, 99):8.2f} "
              f"{pct(values, 50) - pct(ms['direct'], 50):10.2f} {pct(values, 99) - pct(ms['direct'], 99):10.2f}")
    router_added = pct(ms["router"], 50) - pct(ms["direct"], 50)
    litellm_added = pct(ms["gateway"], 50) - pct(ms["router"], 50)
    total_added = pct(ms["gateway"], 50) - pct(ms["direct"], 50)
    print(f"  ratios p50: router/direct {pct(ms['router'], 50) / pct(ms['direct'], 50):.2f}x, "
          f"gateway/direct {pct(ms['gateway'], 50) / pct(ms['direct'], 50):.2f}x, "
          f"gateway/router {pct(ms['gateway'], 50) / pct(ms['router'], 50):.2f}x")
    print(f"  the gateway path adds {total_added:.1f} ms TTFT p50 (router {router_added:.1f}, LiteLLM "
          f"{litellm_added:.1f}); goal <= {TTFT_GOAL_MS:g} ms: "
          + ("met" if total_added <= TTFT_GOAL_MS else
             f"MISSED{' - LiteLLM alone costs more than the goal' if litellm_added > TTFT_GOAL_MS else ''}"))

    print(f"\nOne LiteLLM worker under load (non-streaming, closed loop, {seconds:g} s per step):")
    print(f"  {'c':>4} {'gateway req/s':>14} {'p99 ms':>8} {'direct req/s':>13} {'direct p99':>11} {'added p99':>10}")
    best: tuple[int, float, float, float] | None = None
    previous = 0.0
    for concurrency in (4, 8, 16, 32, 64):
        rps, lat = asyncio.run(load(paths["gateway"][0], paths["gateway"][1], concurrency, seconds))
        d_rps, d_lat = asyncio.run(load(paths["direct"][0], {}, concurrency, seconds / 2))
        p99, d_p99 = pct(lat, 99) * 1000, pct(d_lat, 99) * 1000
        print(f"  {concurrency:4d} {rps:14.1f} {p99:8.1f} {d_rps:13.1f} {d_p99:11.1f} {p99 - d_p99:10.1f}")
        if best is None or rps > best[1]:
            best = (concurrency, rps, p99, p99 - d_p99)
        if previous and rps < previous * 1.05:  # saturated: more clients, no more throughput
            break
        previous = rps
    assert best is not None
    concurrency, per_worker, p99, added = best
    workers = workers_for(TARGET_RPS, per_worker, cores)
    print(f"  one worker saturates near c={concurrency}: {per_worker:.0f} req/s, p99 {p99:.0f} ms "
          f"({added:.0f} ms added over direct)")
    print(f"\nLiteLLM workers for {TARGET_RPS:g} req/s on {cores} cores (each at <= {WORKER_HEADROOM:.0%} of "
          f"saturation): {workers}  [rendered default uses {PER_WORKER_RPS:g} req/s/worker -> "
          f"{workers_for(TARGET_RPS, PER_WORKER_RPS, cores)} workers]")
    return {"per_worker_rps": per_worker, "workers": workers, "added_ttft_p50_ms": total_added}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    plan = build_plan(build_spec(read_stack_file(REPO / "Pulumi.prod.yaml")))
    cores = plan.spec.nodes[plan.service("litellm").node].cpus
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as workdir, \
            gateway_path(plan, Path(workdir), gateway_workers=1, ttft_s=0.02, per_token_s=0.0, tokens=4) as path:
        run(path, args.requests, args.seconds, cores)


if __name__ == "__main__":
    main()
