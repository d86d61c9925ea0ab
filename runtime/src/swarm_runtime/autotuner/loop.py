"""The running service: one controller per target, a fixed tick, ``/metrics`` and ``/health``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import ModuleType
from typing import Any

import aiohttp
import pynvml
from aiohttp import web

from swarm_runtime.autotuner.actuator import Actuator, DryRunActuator, RouterActuator
from swarm_runtime.autotuner.config import AutotunerConfig
from swarm_runtime.autotuner.controller import TargetController
from swarm_runtime.autotuner.limit import GpuAwareLimit, LimitParams
from swarm_runtime.autotuner.metrics import AutotunerMetrics
from swarm_runtime.autotuner.nvml_probe import NvmlProbe, open_probes
from swarm_runtime.autotuner.recommend import MaxNumSeqsRecommender
from swarm_runtime.autotuner.smoothing import MedianFiltered
from swarm_runtime.autotuner.types import Clock
from swarm_runtime.autotuner.vllm_probe import VllmProbe

__all__ = ["Autotuner"]

log = logging.getLogger(__name__)


class Autotuner:
    """``await start()``, then ``await run(stop)``; ``await close()`` releases everything.

    ``nvml`` and ``clock`` are injected (tests pass a fake NVML and a fake clock);
    ``admin_key`` defaults to the environment variable named by ``router.admin_key_env``.
    """

    def __init__(self, config: AutotunerConfig, *, nvml: ModuleType | Any = pynvml,
                 clock: Clock = time.monotonic, admin_key: str | None = None,
                 serve_http: bool = True) -> None:
        self.config = config
        self.metrics = AutotunerMetrics()
        self.controllers: list[TargetController] = []
        self.ticks = 0
        self._nvml = nvml
        self._clock = clock
        self._admin_key = admin_key if admin_key is not None else config.admin_key()
        self._serve_http = serve_http
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._probes: dict[int, NvmlProbe] = {}
        self._last_tick_at: float | None = None
        self.port: int | None = None

    async def start(self) -> None:
        cfg = self.config
        self._session = aiohttp.ClientSession()
        indices = [t.gpu_index for t in cfg.targets if t.gpu_index is not None]
        self._probes = open_probes(indices, self._nvml)
        actuator: Actuator
        if cfg.dry_run:
            actuator = DryRunActuator()
            log.info("dry-run: limits are computed and reported, never pushed to %s", cfg.router.url)
        else:
            if not self._admin_key:
                log.warning("env var %s is empty: the router will refuse limit updates",
                            cfg.router.admin_key_env)
            actuator = RouterActuator(cfg.router.url, self._admin_key, self._session, self._clock,
                                      cfg.router.timeout_s, cfg.router.backoff_initial_s,
                                      cfg.router.backoff_max_s)
        self.metrics.dry_run.set(int(cfg.dry_run))
        for target in cfg.targets:
            params = LimitParams.from_config(target, cfg.thermal, cfg.control)
            limit = MedianFiltered(GpuAwareLimit(params, self._clock), cfg.control.smoothing_window)
            probe = VllmProbe(target.vllm_url, self._session, cfg.control.ttft_quantile,
                              timeout_s=min(cfg.interval_s, 5.0))
            gpu = self._probes.get(target.gpu_index) if target.gpu_index is not None else None
            recommender = MaxNumSeqsRecommender(self._clock, cfg.control.recommend_window_s,
                                                cfg.control.recommend_round_to,
                                                percentile=cfg.control.recommend_percentile)
            self.controllers.append(TargetController(
                target.backend, limit, probe, actuator, self.metrics, recommender, gpu=gpu,
                gpu_index=target.gpu_index, max_temp_c=cfg.thermal.max_temp_c,
                ttft_target_s=target.ttft_target_s))
        if self._serve_http:
            await self._start_http()
        log.info("swarm-autotuner started: %d target(s) (%s), every %gs, %s", len(self.controllers),
                 ", ".join(c.backend for c in self.controllers), cfg.interval_s,
                 "dry-run" if cfg.dry_run else f"pushing to {cfg.router.url}")

    async def _start_http(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/health", self._handle_health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.listen.host, self.config.listen.port)
        await site.start()
        # The runner's addresses come from the listening sockets, under asyncio and uvloop alike.
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        log.info("serving /metrics and /health on %s:%s", self.config.listen.host, self.port)

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), content_type="text/plain", charset="utf-8")

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Alive if a tick finished within three intervals (or none was due yet)."""
        stale_after = max(3 * self.config.interval_s, 10.0)
        now = time.monotonic()
        alive = self._last_tick_at is None or now - self._last_tick_at <= stale_after
        targets = {}
        for c in self.controllers:
            sample = c.last_sample
            targets[c.backend] = {
                "limit": c.limit.limit,
                "vllm_up": sample is not None and sample.vllm is not None,
                "gpu_up": sample is not None and sample.gpu is not None,
                "limit_applied": bool(c.last_push and c.last_push.applied),
                "recommended_max_num_seqs": c.recommended,
            }
        return alive, {"status": "ok" if alive else "stalled", "dry_run": self.config.dry_run,
                       "ticks": self.ticks, "targets": targets}

    async def _handle_health(self, request: web.Request) -> web.Response:
        alive, body = self.health()
        return web.json_response(body, status=200 if alive else 503)

    async def tick(self) -> None:
        """One control step for every target (concurrently; one failing target spares the rest)."""
        results = await asyncio.gather(*(c.tick() for c in self.controllers), return_exceptions=True)
        for controller, result in zip(self.controllers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("backend %s: tick failed: %r", controller.backend, result)
        self.ticks += 1
        self._last_tick_at = time.monotonic()

    async def check_gauges(self) -> None:
        """Every target's between-ticks gauge check (one failing target spares the rest)."""
        results = await asyncio.gather(*(c.check_gauges() for c in self.controllers), return_exceptions=True)
        for controller, result in zip(self.controllers, results, strict=True):
            if isinstance(result, BaseException):
                log.error("backend %s: gauge check failed: %r", controller.backend, result)

    async def run(self, stop: asyncio.Event | None = None, max_ticks: int | None = None) -> None:
        """Tick every ``interval_s`` until ``stop`` is set or ``max_ticks`` ticks ran; between
        ticks, check vLLM's gauges and the GPU every ``control.gauge_check_s`` (0: never)."""
        stop = stop or asyncio.Event()
        interval = self.config.interval_s
        next_at = time.monotonic()
        while not stop.is_set() and (max_ticks is None or self.ticks < max_ticks):
            await self.tick()
            next_at += interval
            if next_at < time.monotonic():  # a slow tick: skip the missed slots instead of bursting
                next_at = time.monotonic()
            if max_ticks is None or self.ticks < max_ticks:
                await self._between_ticks(next_at, stop)

    async def _between_ticks(self, next_at: float, stop: asyncio.Event) -> None:
        step = self.config.control.gauge_check_s
        while not stop.is_set():
            delay = next_at - time.monotonic()
            if delay <= 0:
                return
            wait = min(delay, step) if step > 0 else delay
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            if step > 0 and not stop.is_set() and next_at - time.monotonic() > 0:
                await self.check_gauges()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        for probe in self._probes.values():
            probe.close()
        self._probes = {}
