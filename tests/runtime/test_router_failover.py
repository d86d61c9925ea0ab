"""Reliability over real HTTP: retries, a backend killed mid-load, breaker, timeouts, disconnects."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest
from swarm_runtime.router.breaker import BreakerState
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from .conftest import ADMIN, AUTH, RouterServer, chat, router_config


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_failure_before_first_byte_is_retried_on_another_backend(
        fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer],
        client: httpx.Client) -> None:
    a, b = fake_factory(name="a"), fake_factory(name="b")
    router = router_factory(router_config([a, b], affinity={"enabled": False}))
    a.fail_next(1, status=500)
    b.fail_next(1, status=503)
    resp = client.post(router.url + "/v1/chat/completions", json=chat(), headers=AUTH)
    # whichever was tried first failed, the retry hit the other one and failed too: relayed as is
    assert resp.status_code in (500, 503)
    statuses = []
    for fake in (a, b):
        fake.fail_next(1, status=500)
        r = client.post(router.url + "/v1/chat/completions", json=chat(), headers=AUTH)
        statuses.append((r.status_code, r.headers["x-swarm-backend"]))
        fake.fail_next(0)
    assert statuses == [(200, "b1"), (200, "b0")]


def test_refused_backend_fails_over(fake_factory: Callable[..., FakeVllm],
                                    router_factory: Callable[..., RouterServer], client: httpx.Client) -> None:
    a, b = fake_factory(), fake_factory()
    router = router_factory(router_config([a, b], health={"interval_s": 30}))
    a.stop()
    for i in range(6):
        resp = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": f"p{i}"},
                           headers=AUTH)
        assert resp.status_code == 200 and resp.headers["x-swarm-backend"] == "b1"


def test_backend_killed_mid_load_fails_no_unstarted_request(
        fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer]) -> None:
    slow = LatencyModel(ttft_s=0.02, per_token_s=0.005, tokens=8)
    a, b = fake_factory(latency=slow), fake_factory(latency=slow)
    router = router_factory(router_config([a, b]))

    async def load() -> list[int]:
        async with httpx.AsyncClient(timeout=10, trust_env=False,
                                     limits=httpx.Limits(max_connections=32)) as c:
            async def one(i: int) -> int:
                r = await c.post(router.url + "/v1/completions", headers=AUTH,
                                 json={"model": "primary", "prompt": f"q{i}"})
                return r.status_code

            tasks = [asyncio.create_task(one(i)) for i in range(240)]
            deadline = time.monotonic() + 5
            while (a.requests_served < 5 or a.in_flight == 0) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            assert a.in_flight > 0
            await asyncio.to_thread(a.stop)  # kill it while requests are in flight
            return await asyncio.gather(*tasks)

    statuses = asyncio.run(load())
    assert statuses.count(200) == len(statuses)
    assert a.requests_served > 0 and b.requests_served > 0


def test_stream_broken_after_start_ends_with_an_error_event(
        fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer],
        client: httpx.Client) -> None:
    fake = fake_factory(latency=LatencyModel(tokens=6))
    router = router_factory(router_config([fake]))
    fake.fail_mid_stream(after_tokens=3)
    resp = client.post(router.url + "/v1/completions", headers=AUTH,
                       json={"model": "primary", "prompt": "x", "stream": True})
    assert resp.status_code == 200
    events = [e for e in resp.text.split("\n\n") if e]
    assert len(events) == 4 and events[-1].startswith("data: ")
    assert json.loads(events[-1].removeprefix("data: "))["error"]["code"] == "upstream_failed"
    assert "[DONE]" not in resp.text


def test_breaker_opens_over_http_and_recovers(fake_factory: Callable[..., FakeVllm],
                                              router_factory: Callable[..., RouterServer],
                                              client: httpx.Client) -> None:
    a, b = fake_factory(), fake_factory()
    cfg = router_config([a, b], breaker={"failure_threshold": 2, "open_s": 0.5}, affinity={"enabled": False})
    router = router_factory(cfg)
    a.fail_next(100, status=500)
    for i in range(6):
        r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": f"{i}"}, headers=AUTH)
        assert r.status_code == 200
    state = {x["name"]: x for x in client.get(router.url + "/admin/backends", headers=ADMIN).json()}
    assert state["b0"]["breaker"] == "open"
    tried = a.requests_received
    assert tried == 2  # after opening, no more requests reached the failing backend
    a.fail_next(0)
    time.sleep(0.55)
    assert router.call(lambda: router.state.pool.backends["b0"].breaker.state) is BreakerState.HALF_OPEN
    router.call(lambda: setattr(router.state.pool.backends["b1"], "limit", 1))
    router.call(lambda: setattr(router.state.pool.backends["b1"], "in_flight", 1))
    r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "probe"}, headers=AUTH)
    router.call(lambda: setattr(router.state.pool.backends["b1"], "in_flight", 0))
    assert r.status_code == 200 and r.headers["x-swarm-backend"] == "b0"
    assert router.call(lambda: router.state.pool.backends["b0"].breaker.state) is BreakerState.CLOSED


def test_unhealthy_backend_is_avoided(fake_factory: Callable[..., FakeVllm],
                                      router_factory: Callable[..., RouterServer], client: httpx.Client) -> None:
    a, b = fake_factory(), fake_factory()
    router = router_factory(router_config([a, b]))
    a.set_healthy(False)
    wait_until(lambda: not router.state.pool.backends["b0"].healthy)
    for i in range(5):
        r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": f"{i}"}, headers=AUTH)
        assert r.headers["x-swarm-backend"] == "b1"
    a.set_healthy(True)
    wait_until(lambda: router.state.pool.backends["b0"].healthy)


def test_all_backends_down_is_a_503_with_retry_after(fake_factory: Callable[..., FakeVllm],
                                                     router_factory: Callable[..., RouterServer],
                                                     client: httpx.Client) -> None:
    a = fake_factory()
    router = router_factory(router_config([a]))
    a.set_healthy(False)
    wait_until(lambda: not router.state.pool.backends["b0"].healthy)
    r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "no_healthy_backend"


def test_first_byte_timeout_retries_elsewhere(fake_factory: Callable[..., FakeVllm],
                                              router_factory: Callable[..., RouterServer],
                                              client: httpx.Client) -> None:
    a, b = fake_factory(), fake_factory()
    router = router_factory(router_config([a, b], timeouts={"first_byte_s": 0.3},
                                          affinity={"enabled": False}))
    a.hang_next(1)
    b.hang_next(1)
    started = time.monotonic()
    r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert 0.55 < time.monotonic() - started < 2.0  # two attempts of 0.3 s
    a.hang_next(1)
    r = client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "x"}, headers=AUTH)
    assert r.status_code == 200


def test_idle_timeout_mid_stream(fake_factory: Callable[..., FakeVllm],
                                 router_factory: Callable[..., RouterServer], client: httpx.Client) -> None:
    fake = fake_factory(latency=LatencyModel(tokens=5))
    router = router_factory(router_config([fake], timeouts={"idle_s": 0.3}))
    fake.stall_mid_stream(after_tokens=2)
    started = time.monotonic()
    r = client.post(router.url + "/v1/completions", headers=AUTH,
                    json={"model": "primary", "prompt": "x", "stream": True})
    assert 0.25 < time.monotonic() - started < 2.0
    events = [e for e in r.text.split("\n\n") if e]
    assert len(events) == 3 and "stalled" in events[-1]


@pytest.mark.parametrize("stream", [True, False])
def test_client_disconnect_cancels_the_upstream(fake_factory: Callable[..., FakeVllm],
                                                router_factory: Callable[..., RouterServer],
                                                stream: bool) -> None:
    fake = fake_factory(latency=LatencyModel(ttft_s=0.0, per_token_s=0.05, tokens=100))
    router = router_factory(router_config([fake]))
    body = {"model": "primary", "prompt": "x", "stream": stream}
    with httpx.Client(timeout=0.4, trust_env=False) as c:
        if stream:
            with c.stream("POST", router.url + "/v1/completions", json=body, headers=AUTH) as resp:
                next(resp.iter_bytes())
        else:
            with pytest.raises(httpx.ReadTimeout):
                c.post(router.url + "/v1/completions", json=body, headers=AUTH)
    wait_until(lambda: fake.requests_aborted == 1 and fake.in_flight == 0, timeout=2.0)
    assert fake.requests_served == 0
    wait_until(lambda: router.state.pool.backends["b0"].in_flight == 0, timeout=2.0)
