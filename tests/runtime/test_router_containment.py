"""Containment: poison requests cannot take healthy backends out; breakers respect a pool-wide budget."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from swarm_runtime.router.breaker import BreakerState
from swarm_runtime.router.config import BackendConfig, BreakerConfig
from swarm_runtime.router.containment import install
from swarm_runtime.router.pool import NoBackend, Pool
from swarm_runtime.router.routing import round_robin

from tests.runtime.support import ThreadedApp

from .conftest import AUTH, RouterServer
from .support import FakeClock


class PoisonBackend(ThreadedApp):
    """A vLLM stand-in that crashes (500) on any prompt containing ``POISON``, like vLLM on odd inputs."""

    def __init__(self, always_fail: bool = False) -> None:
        self.always_fail = always_fail
        self.received: Counter[str] = Counter()
        app = web.Application()
        app.router.add_get("/health", self._text)
        app.router.add_get("/metrics", self._text)
        app.router.add_post("/v1/completions", self._complete)
        super().__init__(app)

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text="ok" if request.path == "/health" else "")

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        poison = "POISON" in body["prompt"]
        self.received["poison" if poison else "good"] += 1
        if poison or self.always_fail:
            return web.json_response({"object": "error", "message": "engine crashed", "code": 500}, status=500)
        await asyncio.sleep(0.002)
        return web.json_response({"object": "text_completion", "choices": [{"index": 0, "text": "ok"}]})



@pytest.fixture
def backends() -> Iterator[Callable[..., PoisonBackend]]:
    started: list[PoisonBackend] = []

    def make(**kwargs: Any) -> PoisonBackend:
        started.append(PoisonBackend(**kwargs).start())
        return started[-1]

    yield make
    for backend in started:
        backend.stop()


def config(urls: list[str], **overrides: Any) -> Any:
    from swarm_runtime.router.config import RouterConfig

    data: dict[str, Any] = {
        "api_key_env": "ROUTER_API_KEY", "retries": 2, "affinity": {"enabled": False},
        "backends": [{"name": f"b{i}", "url": u, "models": ["primary"]} for i, u in enumerate(urls)],
        "health": {"interval_s": 0.2, "timeout_s": 0.5, "scrape_interval_s": 0.2},
        "breaker": {"failure_threshold": 3, "open_s": 30},
        "timeouts": {"connect_s": 1, "first_byte_s": 5, "idle_s": 5},
    }
    data.update(overrides)
    return RouterConfig.model_validate(data)


async def _burst(url: str, prompts: list[str], concurrency: int) -> list[tuple[str, int]]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        async def one(prompt: str) -> tuple[str, int]:
            async with limit:
                r = await client.post(url + "/v1/completions", headers=AUTH,
                                      json={"model": "primary", "prompt": prompt})
                return prompt, r.status_code

        return await asyncio.gather(*(one(p) for p in prompts))


def test_poison_burst_leaves_good_requests_served_and_breakers_closed(
        backends: Callable[..., PoisonBackend], router_factory: Callable[..., RouterServer]) -> None:
    fakes = [backends() for _ in range(3)]
    router = router_factory(config([f.url for f in fakes]))
    prompts = [f"POISON {i}" if i % 3 == 0 else f"good {i}" for i in range(90)]
    results = asyncio.run(_burst(router.url, prompts, concurrency=16))
    good = [status for prompt, status in results if not prompt.startswith("POISON")]
    poison = [status for prompt, status in results if prompt.startswith("POISON")]
    assert good == [200] * 60
    assert poison == [500] * 30
    # each poison request was tried on exactly two backends, never a third time
    assert sum(f.received["poison"] for f in fakes) == 2 * 30
    pool = router.state.pool
    assert router.call(lambda: [(b.breaker.state, b.breaker.trips) for b in pool.backends.values()]) == [
        (BreakerState.CLOSED, 0)] * 3
    with httpx.Client(trust_env=False) as client:
        assert "swarm_router_poison_requests_total 30.0" in client.get(router.url + "/metrics").text


def test_a_backend_that_fails_everything_is_still_ejected(
        backends: Callable[..., PoisonBackend], router_factory: Callable[..., RouterServer]) -> None:
    broken, fine = backends(always_fail=True), backends()
    router = router_factory(config([broken.url, fine.url]))
    results = asyncio.run(_burst(router.url, [f"good {i}" for i in range(20)], concurrency=1))
    assert [status for _, status in results] == [200] * 20  # failed on b0, retried on b1
    breaker = router.state.pool.backends["b0"].breaker
    assert router.call(lambda: breaker.state) is BreakerState.OPEN
    assert broken.received["good"] == 3  # the failure threshold, then no more


def test_breakers_never_eject_the_last_backend_over_http(
        backends: Callable[..., PoisonBackend], router_factory: Callable[..., RouterServer]) -> None:
    a, b = backends(), backends()
    router = router_factory(config([a.url, b.url], health={"interval_s": 60}, retries=1))
    a.stop()
    b.stop()  # both refuse connections: a backend fault every time, on both
    results = asyncio.run(_burst(router.url, [f"q{i}" for i in range(12)], concurrency=1))
    assert {status for _, status in results} == {502}
    states = router.call(lambda: sorted(x.breaker.state.value for x in router.state.pool.backends.values()))
    assert states == ["closed", "open"]
    assert router.call(lambda: sum(x.breaker.refused_trips for x in router.state.pool.backends.values())) > 0
    with httpx.Client(trust_env=False) as client:
        text = client.get(router.url + "/metrics").text
    assert 'swarm_router_breaker_trips_total{backend="b0"}' in text
    assert "swarm_router_breaker_refused_trips_total" in text


def _pool(n: int, clock: FakeClock, **breaker: int) -> Pool:
    configs = [BackendConfig(name=f"b{i}", url=f"http://127.0.0.1:{i + 1}", models=["m"]) for i in range(n)]
    cfg = BreakerConfig(failure_threshold=1, open_s=10, **breaker)
    pool = Pool(configs, cfg, round_robin, 4, clock=clock)
    install(pool, cfg)
    return pool


@pytest.mark.parametrize(("n", "percent", "max_open"), [
    (1, 100, 0),  # never the last healthy one
    (2, 50, 1),
    (2, 100, 1),
    (4, 50, 2),
    (4, 100, 3),
    (4, 10, 1),  # at least one may always go
    (10, 0, 1),
])
def test_ejection_budget(n: int, percent: int, max_open: int) -> None:
    pool = _pool(n, FakeClock(), max_ejection_percent=percent)
    for backend in pool.backends.values():
        backend.breaker.record_failure()
    opened = [b.name for b in pool.backends.values() if b.breaker.state is BreakerState.OPEN]
    assert len(opened) == max_open
    refused = [b for b in pool.backends.values() if b.breaker.state is BreakerState.CLOSED]
    assert all(b.breaker.refused_trips == 1 for b in refused)


def test_an_unhealthy_backend_counts_against_the_last_healthy_rule() -> None:
    pool = _pool(3, FakeClock(), max_ejection_percent=100)
    b0, b1, b2 = pool.backends.values()
    b0.healthy = False
    b1.breaker.record_failure()
    b2.breaker.record_failure()
    assert b1.breaker.state is BreakerState.OPEN and b2.breaker.state is BreakerState.CLOSED


def test_panic_routes_past_open_breakers_when_too_few_are_available() -> None:
    async def scenario(threshold: int) -> str | None:
        clock = FakeClock()
        pool = _pool(2, clock, panic_threshold_percent=threshold)
        b0, b1 = pool.backends.values()
        b0.breaker.record_failure()  # open: b1 is still healthy
        b1.healthy = False  # then b1's health checks fail: 0 of 2 available
        deadline = asyncio.get_running_loop().time() + 0.2
        try:
            return (await pool.acquire("m", pool.key(None), deadline)).name
        except NoBackend:
            return None

    assert asyncio.run(scenario(50)) == "b0"
    assert asyncio.run(scenario(0)) is None
