"""Where swarm-router's CPU goes under load: py-spy samples of the router process, summarised.

py-spy (``pip install py-spy``) samples the live process without slowing it much; the
summary lists self time by function and inclusive time by area (aiohttp server, aiohttp
client, the proxy's own code, routing, metrics, validation, the event loop).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .load import nonstream_load, run_streams
from .procs import canned, fake, swarm_router

__all__ = ["AREAS", "profile_swarm", "summarise"]

AREAS = {  # first match wins, checked against each stack's frames from the leaf up
    "prometheus_client (metrics)": "prometheus_client/",
    "validation": "router/validation.py",
    "routing + pool + estimator": ("router/routing.py", "router/pool.py", "router/estimator.py"),
    "breaker/containment": ("router/breaker.py", "router/containment.py"),
    "aiohttp client (upstream request/response)": ("aiohttp/client", "aiohttp/connector.py"),
    "aiohttp server (parse, respond)": ("aiohttp/web_", "aiohttp/http_", "aiohttp/base_protocol.py",
                                        "aiohttp/streams.py", "aiohttp/helpers.py"),
    "upstream.py (lean HTTP client)": "router/upstream.py",
    "proxy.py (own code)": "router/proxy.py",
    "asyncio/uvloop": ("asyncio/", "uvloop"),
}


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for area, marks in AREAS.items():
            if any(m in frame for m in ((marks,) if isinstance(marks, str) else marks)):
                return area
    return "other"


def summarise(raw: str, top: int = 15) -> str:
    """A text summary of py-spy ``--format raw`` output (``frame;frame;... count`` lines)."""
    self_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_time[frames[-1]] += n
        areas[_area(frames)] += n
    if not total:
        return "  (no samples)"
    lines = ["  by area (self time of the innermost matching frame):"]
    lines += [f"    {n / total:6.1%}  {area}" for area, n in areas.most_common()]
    lines.append(f"  top {top} functions by self time ({total} samples):")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in self_time.most_common(top)]
    return "\n".join(lines)


def _sample(pid: int, seconds: float, load: Callable[[], object]) -> tuple[str, str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "", "py-spy is not installed (pip install py-spy)"
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                   "--format", "raw", "--output", out.name, "--nonblocking"]
        spy_proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        loader = threading.Thread(target=load)
        loader.start()
        try:
            _, err = spy_proc.communicate(timeout=seconds + 30)
        finally:
            if spy_proc.poll() is None:
                spy_proc.kill()
                spy_proc.wait()
            loader.join()
        return Path(out.name).read_text(), err.decode(errors="replace")[-500:]


def profile_swarm(seconds: float = 4.0, connections: int = 32, clients: int = 64) -> None:
    """Sample swarm-router under non-streaming load (canned backend) and under streams (fake vLLM)."""
    with canned() as backend, swarm_router([backend], cap=100_000) as (url, pid):
        nonstream_load(url, connections, 1.0)
        raw, err = _sample(pid, seconds, lambda: nonstream_load(url, connections, seconds + 1.0))
    print(f"\nprofile of swarm-router under non-stream c={connections} (py-spy, {seconds:g} s):")
    print(summarise(raw) if raw else f"  py-spy failed: {err}")
    with fake(0.01, 0.02, 32) as backend, swarm_router([backend]) as (url, pid):
        run_streams(url, workers=clients, seconds=1.0)  # warm-up: upstream connections, caches
        raw, err = _sample(pid, seconds, lambda: run_streams(url, workers=clients, seconds=seconds + 1.0))
    print(f"\nprofile of swarm-router under {clients} streams (py-spy, {seconds:g} s):")
    print(summarise(raw) if raw else f"  py-spy failed: {err}")
