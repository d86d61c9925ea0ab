"""Open-loop replay of a schedule against one router URL, timing every streamed request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import aiohttp

from .workload import Request, prompt_text

__all__ = ["Result", "replay"]


@dataclass(frozen=True, slots=True)
class Result:
    """One request as the client saw it (times in seconds; ``backend`` from the first event;
    ``error`` says why a failed one failed)."""

    at: float
    prompt_tokens: int
    ttft: float
    e2e: float
    backend: str
    ok: bool
    error: str = ""


async def _one(session: aiohttp.ClientSession, url: str, req: Request, headers: dict[str, str],
               start: float) -> Result:
    loop = asyncio.get_running_loop()
    body = {"model": "primary", "prompt": prompt_text(req), "max_tokens": req.output_tokens, "stream": True}
    sent = loop.time()
    ttft, backend, error = -1.0, "", ""
    try:
        async with session.post(url + "/v1/completions", json=body, headers=headers) as resp:
            if resp.status != 200:
                await resp.read()
                return Result(req.at, req.prompt_tokens, -1.0, loop.time() - sent, "", False, f"HTTP {resp.status}")
            async for line in resp.content:
                if not line.startswith(b"data: {"):
                    continue
                if ttft < 0:
                    ttft = loop.time() - sent
                    backend = str(json.loads(line[6:]).get("system_fingerprint", ""))
        if ttft < 0:
            error = "no token"
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        error = type(exc).__name__
    return Result(req.at, req.prompt_tokens, ttft, loop.time() - sent, backend, not error, error)


async def replay(url: str, schedule: list[Request], api_key: str | None = None) -> list[Result]:
    """Send every request at its ``at`` offset, whatever the earlier ones are doing (open loop)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1
        tasks: list[asyncio.Task[Result]] = []
        for req in schedule:
            delay = start + req.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, url, req, headers, start)))
        return list(await asyncio.gather(*tasks))
