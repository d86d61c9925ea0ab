"""The routers under comparison, each started on a free 127.0.0.1 port and always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from _support import free_port, pin, stop_process, wait_http
from rust_router import running as rust_running

from .engine import EngineSpec

__all__ = ["API_KEY", "ROUTER_CPU", "SWARM", "router", "simulated_backends"]

API_KEY = "bench-key"
ROUTER_CPU, LOAD_CPU = 0, 1
SWARM_SCRAPE_S = 0.5
SWARM = ("swarm", "swarm-early", "swarm-no-affinity")  # swarm-router as configured by default, binding early,
# and without prefix affinity (no warm backend, no cached prefix credited)


@contextmanager
def simulated_backends(slowdowns: list[float], prefix_cache_tokens: int = 0) -> Iterator[list[str]]:
    """One process serving one simulated engine per slowdown, each caching ``prefix_cache_tokens``
    of session prefixes; yields their URLs."""
    ports = [free_port() for _ in slowdowns]
    args = [sys.executable, "-m", "routing.server", "--prefix-cache", str(prefix_cache_tokens)]
    for port, slowdown in zip(ports, slowdowns, strict=True):
        args += ["--engine", f"{port}:{slowdown:g}"]
    bench_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(args, cwd=bench_dir, stdout=subprocess.DEVNULL, preexec_fn=lambda: pin(LOAD_CPU))
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            wait_http(url + "/health", proc)
        yield urls
    finally:
        stop_process(proc)


@contextmanager
def _swarm(backends: list[str], late_binding: bool, affinity: bool) -> Iterator[str]:
    port = free_port()
    budget = EngineSpec().max_batched_tokens  # the simulated engines' step budget, told as an operator would
    cfg = {"listen": {"host": "127.0.0.1", "port": port}, "api_key_env": "ROUTER_API_KEY", "log_level": "warning",
           "health": {"scrape_interval_s": SWARM_SCRAPE_S}, "late_binding": {"enabled": late_binding},
           "affinity": {"enabled": affinity},
           "backends": [{"name": f"b{i}", "url": u, "models": ["primary"], "token_budget": budget}
                        for i, u in enumerate(backends)]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(cfg, f)  # JSON is YAML
    env = {**os.environ, "ROUTER_API_KEY": API_KEY, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "swarm_runtime.router.cli", "--config", f.name], env=env,
                            stdout=subprocess.DEVNULL, preexec_fn=lambda: pin(ROUTER_CPU))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health", proc)
        yield url
    finally:
        stop_process(proc)
        os.unlink(f.name)


@contextmanager
def router(name: str, backends: list[str]) -> Iterator[tuple[str, str | None, Callable[[], str]]]:
    """``(url, api key, its log so far)`` of router ``name``: ``swarm``, ``swarm-early`` (late
    binding off), ``swarm-no-affinity`` or ``vllm-router:<policy>``. swarm-router's warnings go
    to the bench's own stderr as they happen, so its log reads empty."""
    if name in SWARM:
        with _swarm(backends, late_binding=name != "swarm-early", affinity=name != "swarm-no-affinity") as url:
            yield url, API_KEY, str
        return
    policy = name.split(":", 1)[1]
    with rust_running(backends, policy=policy, cpu=ROUTER_CPU) as rr:
        yield rr.url, None, rr.log_text
