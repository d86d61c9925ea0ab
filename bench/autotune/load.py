"""Open-loop Poisson load through the router, streaming chat completions (bench seconds)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import aiohttp

from autotune.sim import MODEL, SCALE, TOKENS

REQUEST_TIMEOUT_S = 60.0 / SCALE


@dataclass
class Outcome:
    arrived: float  # loop time
    status: int  # HTTP status; -1 cut mid-stream, -2 no answer
    ttft: float | None  # client-observed, bench seconds


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
                status = -1
    except (aiohttp.ClientError, TimeoutError):
        status = -1 if status == 200 else (status or -2)
    out.append(Outcome(arrived, status, ttft))


async def offer_load(url: str, rate_per_s: float, duration_s: float, rng: random.Random,
                     t0: float) -> list[Outcome]:
    """Arrivals at ``rate_per_s`` (bench time) from ``t0`` for ``duration_s``; bounded straggler wait."""
    loop = asyncio.get_running_loop()
    out: list[Outcome] = []
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        at = t0
        while True:
            at += rng.expovariate(rate_per_s)
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
        if tasks:
            await asyncio.wait(set(tasks), timeout=1)
    return out
