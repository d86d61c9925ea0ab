#!/usr/bin/env python
"""Benchmark for swarm-autotuner (issue 5, item 8): goodput of concurrency policies, side by side.

One run, everything on 127.0.0.1, bounded to a few minutes:

* a simulated backend: the fake vLLM server (``swarm_runtime.testing.fake_vllm``) with a
  latency hook whose decode step grows with the batch (throughput saturates) and whose time
  to first token climbs quadratically past a knee; multiplicative jitter from a seeded RNG;
* a simulated GPU: the fake NVML (``swarm_runtime.testing.fake_nvml``) whose temperature
  follows power (load) with a first-order lag; the ``cool`` variant never gets near its
  limits, the ``hot`` one (high ambient, like thanos' RTX 3080) would pass 85 °C at high
  batch and clocks down (tokens 1.6x slower) at its 90 °C slowdown threshold;
* the real router: ``swarm-router`` started by this script as a subprocess; every request
  goes through it, and every policy moves the router's per-backend cap through its
  authenticated admin API;
* open-loop Poisson load above the backend's capacity (seeded), streaming chat completions.

Policies: fixed cap 16 (the seeds' batch); the seeds' rule (every 60 s, +4 if GPU
utilisation > 80 %, -4 if < 30 %, within 8..32); the autotuner (the real ``Autotuner``
class, with the fake NVML injected); and fixed caps swept to find the best one.

Time is scaled down 25x: the autotuner's 5 s tick is 0.2 s, the seeds' 60 s period 2.4 s,
the GPU's ~60 s thermal time constant 2.4 s. Every run starts from cap 16 and a half-warm
GPU, warms up (not measured) and is then measured. Goodput is requests per second whose
client-observed TTFT (through the router, including its queue) is within the target.
``best fixed`` is the best cap of the sweep that kept the GPU at or below 85 °C (a cap that
cooks thanos is not a configuration anyone may deploy); the unrestricted best is printed too.
Ratios sum goodput over both variants. The last line is the machine-readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _support import free_port, stop_process
from swarm_runtime.autotuner.actuator import RouterActuator
from swarm_runtime.autotuner.config import parse_config
from swarm_runtime.autotuner.loop import Autotuner
from swarm_runtime.autotuner.nvml_probe import NvmlProbe
from swarm_runtime.testing.fake_nvml import FakeGpu, FakeNvml, ThermalModel
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

SCALE = 1 / 25  # bench seconds per real second
TTFT_TARGET_S = 0.5  # client-observed SLO for goodput
ROUTER_QUEUE_DEADLINE_S = 0.05  # the router sheds what cannot get a slot this fast
# The backend's share of the SLO: what the router's queue may use is not the GPU's to spend.
BACKEND_TTFT_TARGET_S = TTFT_TARGET_S - ROUTER_QUEUE_DEADLINE_S
MAX_TEMP_C = 85.0  # thanos' thermal limit from the seeds
SLOWDOWN_C = 90  # the simulated GPU's own slowdown threshold
ARRIVAL_RATE = 26.0  # requests/s offered, above the simulated backend's ~20 req/s capacity
TOKENS = 8
WARMUP_S = 6.0
MEASURE_S = 10.0
SWEEP: tuple[int, ...] = (12, 16, 20, 24, 28, 32)
ADMIN_KEY = "bench-admin-key"
MODEL = "sim-model"
BACKEND = "sim"
REQUEST_TIMEOUT_S = 10.0


# ----- the simulated backend and GPU ---------------------------------------------------


@dataclass
class Variant:
    name: str
    ambient_c: float
    heat_c: float  # temperature rise at full power (a batch of 32)


VARIANTS = (Variant("cool", ambient_c=35.0, heat_c=30.0), Variant("hot", ambient_c=58.0, heat_c=36.0))


class SimulatedGpuBackend:
    """Fake vLLM + fake NVML sharing one load: the batch heats the GPU, heat slows the batch."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.variant = VARIANTS[0]
        self.fake = FakeVllm([MODEL], latency=LatencyModel(tokens=TOKENS, max_num_seqs=64, fn=self.timing),
                             name="sim")
        self.thermal = ThermalModel(self.load, ambient_c=self.variant.ambient_c, heat_c=self.variant.heat_c,
                                    tau_s=60 * SCALE, utilization_fn=lambda load: min(100.0, 800.0 * load))
        self.gpu = FakeGpu(slowdown_c=SLOWDOWN_C, power_limit_mw=320_000, memory_total_bytes=10 * 1024**3,
                           memory_used_bytes=9 * 1024**3, model=self.thermal)
        self.nvml = FakeNvml([self.gpu])

    def load(self) -> float:
        return min(1.0, float(self.fake.running) / 32)

    def timing(self, running: int) -> tuple[float, float]:
        """``(ttft_s, per_token_s)`` for a batch of ``running`` sequences."""
        n = max(1, running)
        ttft = 0.1 * (1 + n / 24) + 0.003 * max(0, n - 20) ** 2
        per_token = 0.04 + 0.004 * n
        if self.thermal.temperature_c >= SLOWDOWN_C:
            ttft, per_token = ttft * 1.6, per_token * 1.6
        return ttft * self.rng.uniform(0.85, 1.15), per_token

    def use(self, variant: Variant) -> None:
        self.variant = variant
        self.thermal.ambient_c, self.thermal.heat_c = variant.ambient_c, variant.heat_c
        self.thermal.reset(variant.ambient_c + variant.heat_c * 0.5)


# ----- the real router --------------------------------------------------------------------



def router_command() -> list[str]:
    exe = shutil.which("swarm-router", path=str(Path(sys.executable).parent)) or shutil.which("swarm-router")
    cmd = [exe] if exe else [sys.executable, "-c", "from swarm_runtime.router.cli import main; main()"]
    # The router stops by itself even if this script dies without cleaning up.
    timeout = shutil.which("timeout")
    return [timeout, "900", *cmd] if timeout else cmd


async def start_router(backend_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = workdir / "router.yaml"
    cfg.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "api_key_env: null\n"
        "admin_key_env: BENCH_ROUTER_ADMIN_KEY\n"
        "retries: 0\n"
        f"queue: {{max_size: 64, deadline_s: {ROUTER_QUEUE_DEADLINE_S}, retry_after_s: 1}}\n"
        "health: {interval_s: 1.0, scrape_interval_s: 1.0}\n"
        "breaker: {failure_threshold: 1000}\n"
        "affinity: {enabled: false}\n"
        "log_level: warning\n"
        f"backends:\n  - {{name: {BACKEND}, url: \"{backend_url}\", models: [{MODEL}], max_concurrency: 16}}\n")
    env = {**os.environ, "BENCH_ROUTER_ADMIN_KEY": ADMIN_KEY}
    log = (workdir / "router.log").open("wb")
    proc = subprocess.Popen([*router_command(), "--config", str(cfg)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # up to ~10 s
            if proc.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return proc, url
            await asyncio.sleep(0.1)
    proc.kill()
    raise SystemExit(f"swarm-router did not start; see {workdir / 'router.log'}:\n"
                     + (workdir / "router.log").read_text()[-2000:])


# ----- load ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    arrived: float
    status: int
    ttft: float | None


async def one_request(session: aiohttp.ClientSession, url: str, arrived: float, out: list[Outcome]) -> None:
    loop = asyncio.get_running_loop()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "bench"}], "max_tokens": TOKENS,
            "stream": True}
    status, ttft = 0, None
    try:
        async with session.post(url + "/v1/chat/completions", json=body,
                                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as resp:
            status = resp.status
            done = False
            async for line in resp.content:
                if not line.startswith(b"data: "):
                    continue
                if line.strip() == b"data: [DONE]":
                    done = True
                elif ttft is None:
                    ttft = loop.time() - arrived
            if status == 200 and not done:
                status = -1  # cut mid-stream
    except (aiohttp.ClientError, TimeoutError):
        status = status if status != 200 else -1
        status = status or -2
    out.append(Outcome(arrived, status, ttft))


async def offer_load(url: str, duration_s: float, rng: random.Random, t0: float) -> list[Outcome]:
    """Open-loop Poisson arrivals for ``duration_s``; waits (bounded) for the stragglers."""
    loop = asyncio.get_running_loop()
    out: list[Outcome] = []
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        at = t0
        while True:
            at += rng.expovariate(ARRIVAL_RATE)
            if at >= t0 + duration_s:
                break
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one_request(session, url, loop.time(), out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks), timeout=REQUEST_TIMEOUT_S + 1)
        for task in list(tasks):
            task.cancel()
    return out


# ----- policies -----------------------------------------------------------------------------

Policy = Callable[[str, SimulatedGpuBackend, asyncio.Event, list[float]], Coroutine[Any, Any, None]]


async def push(session: aiohttp.ClientSession, router_url: str, limit: int) -> None:
    actuator = RouterActuator(router_url, ADMIN_KEY, session, time.monotonic)
    result = await actuator.push(BACKEND, limit)
    if not result.applied:
        raise RuntimeError(f"router refused limit {limit}: {result.error}")


def fixed(cap: int) -> Policy:
    async def run(router_url: str, sim: SimulatedGpuBackend, stop: asyncio.Event, caps: list[float]) -> None:
        async with aiohttp.ClientSession() as session:
            await push(session, router_url, cap)
        while not stop.is_set():
            caps.append(cap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    return run


async def seeds_rule(router_url: str, sim: SimulatedGpuBackend, stop: asyncio.Event, caps: list[float]) -> None:
    """The seeds' main.py: every 60 s, batch +4 above 80 % GPU utilisation, -4 below 30 %, in 8..32."""
    probe = NvmlProbe(0, sim.nvml)
    probe.open()
    cap = 16
    period = 60 * SCALE
    async with aiohttp.ClientSession() as session:
        await push(session, router_url, cap)
        next_at = time.monotonic() + period
        while not stop.is_set():
            if time.monotonic() >= next_at:
                next_at += period
                reading = probe.read()
                if reading is not None and reading.utilization_pct > 80:
                    cap = min(32, cap + 4)
                elif reading is not None and reading.utilization_pct < 30:
                    cap = max(8, cap - 4)
                await push(session, router_url, cap)
            caps.append(cap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    probe.close()


async def autotuner(router_url: str, sim: SimulatedGpuBackend, stop: asyncio.Event, caps: list[float]) -> None:
    """The real Autotuner (probes, limit, actuator) with the fake NVML injected."""
    config = parse_config({
        "router": {"url": router_url, "admin_key_env": "BENCH_ROUTER_ADMIN_KEY", "timeout_s": 1.0},
        "interval_s": 5 * SCALE,
        "targets": [{"backend": BACKEND, "vllm_url": sim.fake.url, "gpu_index": 0,
                     "ttft_target_s": BACKEND_TTFT_TARGET_S, "min_limit": 4, "max_limit": 64,
                     "initial_limit": 16}],
        "thermal": {"margin_c": 5, "max_temp_c": MAX_TEMP_C},
        "control": {"cooldown_s": 15 * SCALE, "recommend_window_s": 3600 * SCALE},
    })
    tuner = Autotuner(config, nvml=sim.nvml, admin_key=ADMIN_KEY, serve_http=False)
    await tuner.start()
    task = asyncio.create_task(tuner.run(stop))
    try:
        while not stop.is_set():
            caps.append(tuner.controllers[0].limit.limit)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        rec = tuner.controllers[0].recommended
        await tuner.close()
    print(f"    autotuner recommended max_num_seqs={rec}", flush=True)


# ----- one run ------------------------------------------------------------------------------


@dataclass
class Result:
    variant: str
    policy: str
    goodput: float
    offered: float
    served: float
    shed_pct: float
    p50_ttft: float | None
    p90_ttft: float | None
    mean_cap: float
    final_cap: float
    max_temp: float
    violations: int
    caps: list[float] = field(default_factory=list)


async def run_policy(name: str, policy: Policy, variant: Variant, sim: SimulatedGpuBackend, router_url: str,
                     seed: int) -> Result:
    sim.use(variant)
    stop = asyncio.Event()
    caps: list[float] = []
    temps: list[float] = []
    loop = asyncio.get_running_loop()

    async def watch_temperature() -> None:
        while not stop.is_set():
            temps.append(sim.thermal.advance())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)

    controller = asyncio.create_task(policy(router_url, sim, stop, caps))
    watcher = asyncio.create_task(watch_temperature())
    await asyncio.sleep(0.05)  # the policy's first push lands before the first request
    t0 = loop.time()
    outcomes = await offer_load(router_url, WARMUP_S + MEASURE_S, random.Random(seed), t0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(controller, watcher), 10)

    measured = [o for o in outcomes if o.arrived >= t0 + WARMUP_S]
    ok = [o for o in measured if o.status == 200 and o.ttft is not None]
    good = [o for o in ok if o.ttft is not None and o.ttft <= TTFT_TARGET_S]
    ttfts = sorted(o.ttft for o in ok if o.ttft is not None)
    shed = [o for o in measured if o.status in (429, 503)]
    skip = int(len(caps) * WARMUP_S / (WARMUP_S + MEASURE_S))
    measured_caps = caps[skip:] or caps or [math.nan]
    return Result(
        variant=variant.name, policy=name, goodput=len(good) / MEASURE_S, offered=len(measured) / MEASURE_S,
        served=len(ok) / MEASURE_S,
        shed_pct=100 * len(shed) / max(1, len(measured)),
        p50_ttft=ttfts[len(ttfts) // 2] if ttfts else None,
        p90_ttft=ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))] if ttfts else None,
        mean_cap=statistics.fmean(measured_caps), final_cap=measured_caps[-1],
        max_temp=max(temps, default=math.nan), violations=sum(1 for t in temps if t > MAX_TEMP_C),
        caps=caps)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{1000 * v:.0f}"


def print_row(r: Result) -> None:
    print(f"{r.variant:<5} {r.policy:<14} {r.goodput:8.2f} {r.offered:7.2f} {r.served:7.2f} {r.shed_pct:6.1f} "
          f"{_ms(r.p50_ttft):>6} {_ms(r.p90_ttft):>6} {r.mean_cap:6.1f} {r.final_cap:5.0f} "
          f"{r.max_temp:6.1f} {r.violations:5d}", flush=True)


HEADER = (f"{'var':<5} {'policy':<14} {'goodput':>8} {'offered':>7} {'served':>7} {'shed%':>6} "
          f"{'p50ms':>6} {'p90ms':>6} {'cap':>6} {'end':>5} {'maxC':>6} {'viol':>5}")


async def main_async(seed: int) -> int:
    sim = SimulatedGpuBackend(seed)
    sim.fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="autotune-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        proc, router_url = await start_router(sim.fake.url, workdir)
        print(f"bench: router {router_url} (swarm-router subprocess), fake vLLM {sim.fake.url}; "
              f"{ARRIVAL_RATE:g} req/s offered, SLO TTFT <= {TTFT_TARGET_S}s through the router "
              f"(autotuner target {BACKEND_TTFT_TARGET_S}s for the backend), time x{SCALE:g}, "
              f"warm-up {WARMUP_S:g}s + measure {MEASURE_S:g}s per run", flush=True)
        print(HEADER, flush=True)
        results: list[Result] = []
        for vi, variant in enumerate(VARIANTS):
            policies: list[tuple[str, Policy]] = [(f"fixed-{c}", fixed(c)) for c in SWEEP]
            policies += [("seeds-rule", seeds_rule), ("autotuner", autotuner)]
            for name, policy in policies:
                # Common random numbers: every policy of a variant sees the same arrival times.
                result = await run_policy(name, policy, variant, sim, router_url, seed * 100 + vi)
                results.append(result)
                print_row(result)
    finally:
        if proc is not None:
            stop_process(proc)
        sim.fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    total = {"auto": 0.0, "seeds": 0.0, "fixed16": 0.0, "best": 0.0, "best_any": 0.0}
    for variant in VARIANTS:
        rows = [r for r in results if r.variant == variant.name]
        sweep = [r for r in rows if r.policy.startswith("fixed-")]
        safe = [r for r in sweep if r.violations == 0] or sweep
        best = max(safe, key=lambda r: r.goodput)
        best_any = max(sweep, key=lambda r: r.goodput)
        auto = next(r for r in rows if r.policy == "autotuner")
        seeds = next(r for r in rows if r.policy == "seeds-rule")
        f16 = next(r for r in rows if r.policy == "fixed-16")
        total["auto"] += auto.goodput
        total["seeds"] += seeds.goodput
        total["fixed16"] += f16.goodput
        total["best"] += best.goodput
        total["best_any"] += best_any.goodput
        print(f"{variant.name}: best fixed (thermally safe) {best.policy} {best.goodput:.2f} req/s; "
              f"best fixed (any) {best_any.policy} {best_any.goodput:.2f}; fixed-16 {f16.goodput:.2f}; "
              f"seeds-rule {seeds.goodput:.2f} (ends at cap {seeds.final_cap:.0f}); autotuner "
              f"{auto.goodput:.2f} (mean cap {auto.mean_cap:.1f}, max {auto.max_temp:.1f} C)")
    violations = sum(r.violations for r in results if r.policy == "autotuner")
    ratio_best = total["auto"] / total["best"] if total["best"] else math.nan
    ratio_seeds = total["auto"] / total["seeds"] if total["seeds"] else math.inf
    print(f"autotuner vs fixed-16: {total['auto'] / total['fixed16']:.2f}x; vs best fixed of any "
          f"temperature: {total['auto'] / total['best_any']:.2f}; wall time {time.monotonic() - started:.0f}s")
    print(f"ratio_to_best_fixed={ratio_best:.2f} ratio_to_seeds_rule={ratio_seeds:.2f} "
          f"thermal_violations={violations}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke test: short runs, small sweep")
    args = parser.parse_args(argv)
    if args.quick:
        global WARMUP_S, MEASURE_S, SWEEP
        WARMUP_S, MEASURE_S, SWEEP = 2.0, 3.0, (16, 24)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args.seed))
    return uvloop.run(main_async(args.seed))


if __name__ == "__main__":
    sys.exit(main())
