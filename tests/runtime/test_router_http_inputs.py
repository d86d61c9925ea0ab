"""Every bad input gets an OpenAI-style error with the right 4xx, and the router keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from swarm_runtime.testing.fake_vllm import FakeVllm

from .conftest import AUTH, RouterServer, chat, router_config


@pytest.fixture
def router(fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer]) -> RouterServer:
    fake = fake_factory(models=["primary", "other"])
    return router_factory(router_config([fake], max_body_bytes=2048))


def assert_openai_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)


@pytest.mark.parametrize(("headers", "content", "status", "code"), [
    ({}, b'{"model": "primary"}', 401, "invalid_api_key"),
    ({"Authorization": "Bearer wrong"}, b'{"model": "primary"}', 401, "invalid_api_key"),
    ({"Authorization": "test-key"}, b'{"model": "primary"}', 401, "invalid_api_key"),
    (AUTH, b'{"model": "primary"', 400, "invalid_json"),
    (AUTH, b"\xff\xfe", 400, "invalid_json"),
    (AUTH, b"", 400, "invalid_json"),
    (AUTH, b'["model"]', 400, "invalid_json"),
    (AUTH, b'{"messages": []}', 400, "missing_model"),
    (AUTH, b'{"model": 7}', 400, "missing_model"),
    (AUTH, b'{"model": "gpt-9"}', 404, "model_not_found"),
    (AUTH, b'{"model": "primary", "pad": "' + b"x" * 4096 + b'"}', 413, "body_too_large"),
])
def test_bad_requests(router: RouterServer, client: httpx.Client, headers: dict[str, str], content: bytes,
                      status: int, code: str) -> None:
    resp = client.post(router.url + "/v1/chat/completions", content=content, headers=headers)
    assert_openai_error(resp, status, code)
    ok = client.post(router.url + "/v1/chat/completions", json=chat(), headers=AUTH)
    assert ok.status_code == 200


def test_chunked_body_over_the_limit_is_413(router: RouterServer, client: httpx.Client) -> None:
    def body() -> Any:
        for _ in range(10):
            yield b"x" * 512

    resp = client.post(router.url + "/v1/completions", content=body(), headers=AUTH)
    assert_openai_error(resp, 413, "body_too_large")


def test_wrong_method_and_unknown_path(router: RouterServer, client: httpx.Client) -> None:
    assert_openai_error(client.get(router.url + "/v1/chat/completions", headers=AUTH), 405)
    assert_openai_error(client.get(router.url + "/v2/nothing"), 404, "not_found")


def test_models_is_the_union_and_needs_the_key(router: RouterServer, client: httpx.Client) -> None:
    assert_openai_error(client.get(router.url + "/v1/models"), 401)
    data = client.get(router.url + "/v1/models", headers=AUTH).json()["data"]
    assert [m["id"] for m in data] == ["other", "primary"]


def test_health_and_metrics_are_open(router: RouterServer, client: httpx.Client) -> None:
    assert client.get(router.url + "/health").json()["status"] == "ok"
    client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "x"}, headers=AUTH)
    text = client.get(router.url + "/metrics").text
    assert 'swarm_router_requests_total{backend="b0",status="200"} 1.0' in text
    assert 'swarm_router_backend_limit{backend="b0"} 64.0' in text
    assert "swarm_router_queue_depth 0.0" in text and "swarm_router_ttft_seconds_bucket" in text


def test_missing_api_key_env_refuses_to_build(fake_factory: Callable[..., FakeVllm]) -> None:
    from swarm_runtime.router.app import SecretMissing, build_app

    with pytest.raises(SecretMissing, match="ROUTER_API_KEY"):
        build_app(router_config([fake_factory()]), env={})


def test_no_auth_when_api_key_env_is_null(fake_factory: Callable[..., FakeVllm],
                                          router_factory: Callable[..., RouterServer],
                                          client: httpx.Client) -> None:
    router = router_factory(router_config([fake_factory()], api_key_env=None), env={})
    assert client.post(router.url + "/v1/completions", json={"model": "primary", "prompt": "x"}).status_code == 200


def test_backend_api_key_is_sent_from_its_env(fake_factory: Callable[..., FakeVllm],
                                              router_factory: Callable[..., RouterServer],
                                              client: httpx.Client) -> None:
    fake = fake_factory(api_key="vllm-secret")
    cfg = router_config([fake], backends=[{"name": "b0", "url": fake.url, "models": ["primary"],
                                           "api_key_env": "VLLM_KEY"}])
    router = router_factory(cfg, env={"ROUTER_API_KEY": "test-key", "VLLM_KEY": "vllm-secret"})
    assert client.post(router.url + "/v1/chat/completions", json=chat(), headers=AUTH).status_code == 200
    assert fake.requests_served == 1
