"""Enforcement over real HTTP against the real swarm-router admin API, and its degraded modes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from swarm_runtime.autotuner.actuator import DryRunActuator, RouterActuator
from swarm_runtime.router.app import build_app
from swarm_runtime.router.config import RouterConfig

from tests.runtime.support import FakeClock, free_port

ADMIN = "admin-test-key"




@asynccontextmanager
async def router(port: int = 0, admin_key: str | None = ADMIN) -> AsyncIterator[str]:
    """The real router app on 127.0.0.1 (its backend need not exist for the admin API)."""
    cfg = RouterConfig.model_validate({
        "api_key_env": None,
        "backends": [{"name": "gpu-a", "url": "http://127.0.0.1:9", "models": ["m"], "max_concurrency": 8}],
        "health": {"interval_s": 60, "scrape_interval_s": 60},
    })
    env = {"ROUTER_ADMIN_KEY": admin_key} if admin_key else {}
    runner = web.AppRunner(build_app(cfg, env))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        await runner.cleanup()


async def router_limit(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url + "/admin/backends", headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        backends = await resp.json()
    return int(next(b["limit"] for b in backends if b["name"] == "gpu-a"))


def test_push_sets_the_router_cap_and_skips_repeats() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with router() as url, aiohttp.ClientSession() as session:
            actuator = RouterActuator(url, ADMIN, session, clock, resync_s=60)
            result = await actuator.push("gpu-a", 13)
            assert result.applied and result.attempted
            assert await router_limit(session, url) == 13
            again = await actuator.push("gpu-a", 13)
            assert again.applied and not again.attempted  # unchanged: no request
            clock.t = 61  # resync: a restarted router would have lost the cap
            assert (await actuator.push("gpu-a", 13)).attempted

    asyncio.run(scenario())


@pytest.mark.parametrize(("key", "admin", "backend", "fragment"), [
    ("wrong", ADMIN, "gpu-a", "HTTP 401"),
    (ADMIN, None, "gpu-a", "HTTP 403"),
    (ADMIN, ADMIN, "nope", "HTTP 404"),
])
def test_rejections_are_reported(key: str, admin: str | None, backend: str, fragment: str) -> None:
    async def scenario() -> None:
        async with router(admin_key=admin) as url, aiohttp.ClientSession() as session:
            result = await RouterActuator(url, key, session, FakeClock()).push(backend, 5)
            assert not result.applied and result.error is not None and fragment in result.error

    asyncio.run(scenario())


def test_router_down_backs_off_exponentially_then_recovers(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()

    async def scenario() -> None:
        clock = FakeClock()
        async with aiohttp.ClientSession() as session:
            actuator = RouterActuator(f"http://127.0.0.1:{port}", ADMIN, session, clock, timeout_s=0.5,
                                      backoff_initial_s=1.0, backoff_max_s=4.0)
            attempts = []
            for t in [0, 0.5, 1, 1.5, 2.5, 3, 5, 7, 9, 13]:
                clock.t = t
                result = await actuator.push("gpu-a", 9)
                assert not result.applied
                if result.attempted:
                    attempts.append(t)
            # retry after 1 s, then 2 s, then 4 s, capped at 4 s
            assert attempts == [0, 1, 3, 7, 13]
            assert actuator.failures("gpu-a") == 5
            async with router(port=port):
                clock.t = 16.9
                assert not (await actuator.push("gpu-a", 9)).attempted  # still backing off
                clock.t = 17
                result = await actuator.push("gpu-a", 9)
                assert result.applied
                assert await router_limit(session, f"http://127.0.0.1:{port}") == 9
            assert actuator.failures("gpu-a") == 0

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())
    assert any("router unreachable" in r.getMessage() for r in caplog.records)
    assert any("router reachable again" in r.getMessage() for r in caplog.records)


def test_dry_run_never_touches_the_router(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        async with router() as url, aiohttp.ClientSession() as session:
            dry = DryRunActuator()
            for limit in (20, 20, 21):
                result = await dry.push("gpu-a", limit)
                assert not result.applied and not result.attempted
            assert await router_limit(session, url) == 8
            assert dry.reported == {"gpu-a": 21}

    asyncio.run(scenario())
    reports = [r.getMessage() for r in caplog.records if "dry-run" in r.getMessage()]
    assert reports == ["dry-run: would set router backend gpu-a limit=20",
                       "dry-run: would set router backend gpu-a limit=21"]
