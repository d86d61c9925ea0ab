"""The admin API (the autotuner's actuator), caps enforced over HTTP, and the wait queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from .conftest import ADMIN, AUTH, RouterServer, router_config


@pytest.fixture
def slow_fake(fake_factory: Callable[..., FakeVllm]) -> FakeVllm:
    return fake_factory(latency=LatencyModel(ttft_s=0.1, per_token_s=0.0, tokens=2))


def put_limit(client: httpx.Client, router: RouterServer, name: str, body: object,
              headers: dict[str, str] | None = None) -> httpx.Response:
    return client.put(f"{router.url}/admin/backends/{name}/limit", json=body,
                      headers=ADMIN if headers is None else headers)


def test_set_and_list_limits(slow_fake: FakeVllm, router_factory: Callable[..., RouterServer],
                             client: httpx.Client) -> None:
    router = router_factory(router_config([slow_fake]))
    resp = put_limit(client, router, "b0", {"limit": 3})
    assert resp.status_code == 200 and resp.json() == {"backend": "b0", "limit": 3}
    listed = client.get(router.url + "/admin/backends", headers=ADMIN).json()
    assert listed[0]["name"] == "b0" and listed[0]["limit"] == 3
    assert {"healthy", "breaker", "in_flight", "waiting", "kv_usage"} <= set(listed[0])
    assert 'swarm_router_backend_limit{backend="b0"} 3.0' in client.get(router.url + "/metrics").text


@pytest.mark.parametrize(("name", "body", "headers", "status"), [
    ("b0", {"limit": 2}, {}, 401),
    ("b0", {"limit": 2}, {"Authorization": "Bearer test-key"}, 401),  # the API key is not the admin key
    ("nope", {"limit": 2}, None, 404),
    ("b0", {"limit": 0}, None, 400),
    ("b0", {"limit": "4"}, None, 400),
    ("b0", {"limit": True}, None, 400),
    ("b0", {"limit": 2.5}, None, 400),
    ("b0", {"cap": 2}, None, 400),
    ("b0", [2], None, 400),
])
def test_admin_rejects_bad_requests(slow_fake: FakeVllm, router_factory: Callable[..., RouterServer],
                                    client: httpx.Client, name: str, body: object,
                                    headers: dict[str, str] | None, status: int) -> None:
    router = router_factory(router_config([slow_fake]))
    resp = put_limit(client, router, name, body, headers)
    assert resp.status_code == status and "error" in resp.json()
    assert router.state.pool.backends["b0"].limit == 64


def test_admin_not_json_is_400(slow_fake: FakeVllm, router_factory: Callable[..., RouterServer],
                               client: httpx.Client) -> None:
    router = router_factory(router_config([slow_fake]))
    resp = client.put(router.url + "/admin/backends/b0/limit", content=b"{", headers=ADMIN)
    assert resp.status_code == 400


def test_admin_disabled_without_admin_key(slow_fake: FakeVllm, router_factory: Callable[..., RouterServer],
                                          client: httpx.Client) -> None:
    router = router_factory(router_config([slow_fake]), env={"ROUTER_API_KEY": "test-key"})
    for resp in (put_limit(client, router, "b0", {"limit": 2}),
                 client.get(router.url + "/admin/backends", headers=ADMIN)):
        assert resp.status_code == 403
        assert "ROUTER_ADMIN_KEY" in resp.json()["error"]["message"]


def run_concurrently(router: RouterServer, n: int, timeout: float = 10) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as c:
            return await asyncio.gather(*[
                c.post(router.url + "/v1/completions", headers=AUTH, json={"model": "primary", "prompt": str(i)})
                for i in range(n)])

    return asyncio.run(go())


def test_cap_is_enforced_and_changes_take_effect(slow_fake: FakeVllm,
                                                 router_factory: Callable[..., RouterServer],
                                                 client: httpx.Client) -> None:
    router = router_factory(router_config([slow_fake]))
    assert put_limit(client, router, "b0", {"limit": 2}).status_code == 200
    started = time.monotonic()
    assert all(r.status_code == 200 for r in run_concurrently(router, 6))
    assert slow_fake.peak_in_flight == 2 and time.monotonic() - started >= 0.3  # three waves of 0.1 s
    assert put_limit(client, router, "b0", {"limit": 6}).status_code == 200
    assert all(r.status_code == 200 for r in run_concurrently(router, 6))
    assert slow_fake.peak_in_flight == 6


def test_queue_full_is_429_and_deadline_is_503(fake_factory: Callable[..., FakeVllm],
                                               router_factory: Callable[..., RouterServer]) -> None:
    fake = fake_factory(latency=LatencyModel(ttft_s=0.4, tokens=1))
    cfg = router_config([fake], queue={"max_size": 2, "deadline_s": 0.2, "retry_after_s": 3},
                        backends=[{"name": "b0", "url": fake.url, "models": ["primary"], "max_concurrency": 1}])
    router = router_factory(cfg)
    responses = run_concurrently(router, 5)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 429, 429, 503, 503]
    for r in responses:
        if r.status_code != 200:
            assert r.headers["retry-after"] == "3"
            assert r.json()["error"]["code"] == ("queue_full" if r.status_code == 429 else "queue_timeout")
