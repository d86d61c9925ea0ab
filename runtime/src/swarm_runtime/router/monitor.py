"""Background health checks and vLLM metric scrapes, one task pair per backend.

A backend turns unhealthy after ``unhealthy_after`` failed checks in a row and healthy again
after ``healthy_after`` passing ones; scraped load (waiting, running, KV usage) is dropped
back to zero once older than ``stale_after_s`` so a dead scrape cannot pin a backend.
Each scrape also feeds the backend's rate estimator (sequence limit, decode steps/s,
foreign load reconciled against the router's own in-flight count).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from ..vllm_metrics import parse_vllm_metrics
from .config import HealthConfig
from .pool import Backend, Pool

__all__ = ["Monitor"]

log = logging.getLogger(__name__)


class Monitor:
    """Runs the checks until :meth:`stop`."""

    def __init__(self, pool: Pool, session: aiohttp.ClientSession, cfg: HealthConfig,
                 headers: dict[str, dict[str, str]]) -> None:
        self.pool = pool
        self.session = session
        self.cfg = cfg
        self.headers = headers
        self.timeout = aiohttp.ClientTimeout(total=cfg.timeout_s)
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for backend in self.pool.backends.values():
            self.tasks.append(asyncio.create_task(self._health_loop(backend), name=f"health-{backend.name}"))
            self.tasks.append(asyncio.create_task(self._scrape_loop(backend), name=f"scrape-{backend.name}"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def check_health(self, backend: Backend) -> None:
        ok = False
        try:
            async with self.session.get(backend.config.url + "/health", timeout=self.timeout,
                                        headers=self.headers.get(backend.name)) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            ok = False
        self.apply_health(backend, ok)

    def apply_health(self, backend: Backend, ok: bool) -> None:
        if ok:
            backend.health_failures = 0
            backend.health_successes += 1
            if not backend.healthy and backend.health_successes >= self.cfg.healthy_after:
                log.info("backend %s is healthy again", backend.name)
                backend.healthy = True
                self.pool.dispatch()
        else:
            backend.health_successes = 0
            backend.health_failures += 1
            if backend.healthy and backend.health_failures >= self.cfg.unhealthy_after:
                log.warning("backend %s failed %d health checks: unhealthy", backend.name,
                            backend.health_failures)
                backend.healthy = False

    async def scrape(self, backend: Backend) -> None:
        try:
            async with self.session.get(backend.config.url + "/metrics", timeout=self.timeout,
                                        headers=self.headers.get(backend.name)) as resp:
                if resp.status != 200:
                    return
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError):
            return
        metrics = parse_vllm_metrics(text)
        backend.waiting = metrics.waiting
        backend.running = metrics.running
        backend.kv_usage = min(1.0, max(0.0, metrics.kv_cache_usage))
        backend.scraped_at = time.monotonic()
        backend.est.scraped(metrics, backend.in_flight, backend.scraped_at)
        self.pool.dispatch()  # the engine's limit or its foreign load may have changed: held requests may go

    def expire(self, backend: Backend) -> None:
        now = time.monotonic()
        if backend.est.expire(now, self.cfg.stale_after_s):
            self.pool.dispatch()
        if backend.scraped_at is not None and now - backend.scraped_at > self.cfg.stale_after_s:
            backend.waiting = backend.running = backend.kv_usage = 0.0

    async def _health_loop(self, backend: Backend) -> None:
        while True:
            await self.check_health(backend)
            await asyncio.sleep(self.cfg.interval_s)

    async def _scrape_loop(self, backend: Backend) -> None:
        while True:
            await self.scrape(backend)
            self.expire(backend)
            await asyncio.sleep(self.cfg.scrape_interval_s)
