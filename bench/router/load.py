"""Load generators: ``wrk`` for non-streaming requests (aiohttp when wrk is missing), aiohttp for streams."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp
from _support import pin

from .procs import API_KEY, LOAD_CPU

__all__ = ["Load", "Streams", "nonstream_load", "quantile", "run_streams"]

BODY = {"model": "primary", "prompt": "hello there", "max_tokens": 16}


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _wrk(url: str, connections: int, seconds: float, auth: bool) -> Load:
    script = ('wrk.method = "POST"\n'
              f"wrk.body = '{json.dumps(BODY)}'\n"
              'wrk.headers["Content-Type"] = "application/json"\n'
              + (f'wrk.headers["Authorization"] = "Bearer {API_KEY}"\n' if auth else ""))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", f.name,
                   url + "/v1/completions"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30,
                             preexec_fn=lambda: pin(LOAD_CPU), check=True).stdout
    finally:
        os.unlink(f.name)

    def pct(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n_err = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rps, pct("50"), pct("99"), requests, n_err)


async def _aiohttp_load(url: str, connections: int, seconds: float, auth: bool) -> Load:
    body = json.dumps(BODY).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {API_KEY}"} if auth else {})}
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                async with s.post(url + "/v1/completions", data=body, headers=headers) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        elapsed = time.perf_counter() - start
    latencies.sort()
    return Load(len(latencies) / elapsed, quantile(latencies, 0.5) * 1e3, quantile(latencies, 0.99) * 1e3,
                len(latencies), errors)


def nonstream_load(url: str, connections: int, seconds: float, auth: bool = True) -> Load:
    """Closed-loop non-streaming load from ``connections`` clients for ``seconds``."""
    if shutil.which("wrk"):
        return _wrk(url, connections, seconds, auth)
    return asyncio.run(_aiohttp_load(url, connections, seconds, auth))


@dataclass
class Streams:
    ttfts: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def add(self, other: Streams) -> None:
        self.ttfts = sorted(self.ttfts + other.ttfts)
        self.errors += other.errors
        self.elapsed += other.elapsed


async def _streams(url: str, arrivals: list[float] | None, workers: int, seconds: float, auth: bool) -> Streams:
    """Closed loop (``workers`` clients) or open loop (``arrivals`` offsets in seconds)."""
    body = json.dumps({"model": "primary", "prompt": "stream please", "stream": True}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {API_KEY}"} if auth else {})}
    ttfts: list[float] = []
    errors = 0
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as s:
        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            data = body if arrivals is None else body.replace(b"please", f"please {i}".encode())
            try:
                async with s.post(url + "/v1/completions", data=data, headers=headers) as r:
                    first = True
                    async for _ in r.content.iter_any():
                        if first:
                            ttfts.append(time.perf_counter() - t)
                            first = False
                    errors += r.status != 200
            except aiohttp.ClientError:
                errors += 1

        start = time.perf_counter()
        if arrivals is None:
            stop = start + seconds

            async def worker() -> None:
                while time.perf_counter() < stop:
                    await one(0)

            await asyncio.gather(*[worker() for _ in range(workers)])
        else:
            tasks = []
            for i, offset in enumerate(arrivals):
                delay = start + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        return Streams(sorted(ttfts), errors, time.perf_counter() - start)


def run_streams(url: str, arrivals: list[float] | None = None, workers: int = 0, seconds: float = 0,
                auth: bool = True) -> Streams:
    import uvloop

    return uvloop.run(_streams(url, arrivals, workers, seconds, auth))
