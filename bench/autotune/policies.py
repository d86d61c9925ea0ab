"""Concurrency policies under test; each moves the router's cap through its admin API.

A policy runs until ``stop`` is set and appends ``(loop time, cap)`` to ``caps`` every
:data:`SAMPLE_S` bench seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from swarm_runtime.autotuner.actuator import RouterActuator
from swarm_runtime.autotuner.config import ThermalConfig, parse_config
from swarm_runtime.autotuner.loop import Autotuner
from swarm_runtime.autotuner.nvml_probe import NvmlProbe

from autotune.router import ADMIN_KEY, ADMIN_KEY_ENV, BACKEND
from autotune.sim import MAX_TEMP_C, SCALE, SimulatedNode

TTFT_TARGET_S = 0.5  # client-observed SLO (simulated seconds)
# The backend's share of the SLO: what the router's queue may use is not the GPU's to spend.
BACKEND_TTFT_TARGET_S = 0.45
SAMPLE_S = 0.05

Caps = list[tuple[float, float]]
Policy = Callable[[str, SimulatedNode, asyncio.Event, Caps], Coroutine[Any, Any, None]]


async def push(session: aiohttp.ClientSession, router_url: str, limit: int) -> None:
    actuator = RouterActuator(router_url, ADMIN_KEY, session, time.monotonic)
    result = await actuator.push(BACKEND, limit)
    if not result.applied:
        raise RuntimeError(f"router refused limit {limit}: {result.error}")


async def _tick(stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), SAMPLE_S)


def fixed(cap: int) -> Policy:
    async def run(router_url: str, node: SimulatedNode, stop: asyncio.Event, caps: Caps) -> None:
        async with aiohttp.ClientSession() as session:
            await push(session, router_url, cap)
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            caps.append((loop.time(), cap))
            await _tick(stop)
    return run


async def seeds_rule(router_url: str, node: SimulatedNode, stop: asyncio.Event, caps: Caps) -> None:
    """The seeds' main.py: every 60 s, batch +4 above 80 % GPU utilisation, -4 below 30 %, in 8..32."""
    probe = NvmlProbe(0, node.nvml)
    probe.open()
    cap, period = 16, 60 / SCALE
    loop = asyncio.get_running_loop()
    try:
        async with aiohttp.ClientSession() as session:
            await push(session, router_url, cap)
            next_at = loop.time() + period
            while not stop.is_set():
                if loop.time() >= next_at:
                    next_at += period
                    reading = probe.read()
                    if reading is not None and reading.utilization_pct > 80:
                        cap = min(32, cap + 4)
                    elif reading is not None and reading.utilization_pct < 30:
                        cap = max(8, cap - 4)
                    await push(session, router_url, cap)
                caps.append((loop.time(), cap))
                await _tick(stop)
    finally:
        probe.close()


PRODUCTION_MARGIN_C = ThermalConfig().margin_c


def autotuner_config(router_url: str, vllm_url: str, margin_c: float = PRODUCTION_MARGIN_C) -> Any:
    """Production defaults except the time scale (every duration divided by SCALE) and,
    if asked, the thermal guard's margin."""
    return parse_config({
        "router": {"url": router_url, "admin_key_env": ADMIN_KEY_ENV, "timeout_s": 1.0},
        "interval_s": 5 / SCALE,
        "targets": [{"backend": BACKEND, "vllm_url": vllm_url, "gpu_index": 0,
                     "ttft_target_s": BACKEND_TTFT_TARGET_S / SCALE, "min_limit": 2, "max_limit": 64,
                     "initial_limit": 16}],
        "thermal": {"margin_c": margin_c, "max_temp_c": MAX_TEMP_C, "time_constant_s": 30 / SCALE},
        "control": {"cooldown_s": 15 / SCALE, "recommend_window_s": 3600 / SCALE, "gauge_check_s": 1 / SCALE},
    })


def autotuner(recommended: list[int | None], margin_c: float = PRODUCTION_MARGIN_C) -> Policy:
    """The real Autotuner (probes, limit, actuator) with the fake NVML injected."""
    async def run(router_url: str, node: SimulatedNode, stop: asyncio.Event, caps: Caps) -> None:
        tuner = Autotuner(autotuner_config(router_url, node.fake.url, margin_c), nvml=node.nvml,
                          admin_key=ADMIN_KEY, serve_http=False)
        await tuner.start()
        task = asyncio.create_task(tuner.run(stop))
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                caps.append((loop.time(), tuner.controllers[0].limit.limit))
                await _tick(stop)
            await asyncio.wait_for(task, 5)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            recommended.append(tuner.controllers[0].recommended)
            await tuner.close()
    return run
