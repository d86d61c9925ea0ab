"""Shared fixtures: fake vLLM servers and a router running in a background thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from swarm_runtime.router.app import STATE, RouterState, build_app
from swarm_runtime.router.config import RouterConfig
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from tests.runtime.support import ThreadedApp

API_KEY = "test-key"
ADMIN_KEY = "admin-key"
ENV = {"ROUTER_API_KEY": API_KEY, "ROUTER_ADMIN_KEY": ADMIN_KEY}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


class RouterServer(ThreadedApp):
    """A router app served on 127.0.0.1 from its own event loop thread."""

    def __init__(self, cfg: RouterConfig, env: dict[str, str]) -> None:
        super().__init__(build_app(cfg, env), handler_cancellation=True)

    @property
    def state(self) -> RouterState:
        return self.app[STATE]

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the router's loop (for touching its state safely)."""

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(5)


def router_config(fakes: list[FakeVllm], **overrides: Any) -> RouterConfig:
    """A config for ``fakes`` with fast health checks; ``overrides`` are top-level keys."""
    data: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 9000},
        "api_key_env": "ROUTER_API_KEY",
        "backends": [{"name": f"b{i}", "url": f.url, "models": f.models} for i, f in enumerate(fakes)],
        "health": {"interval_s": 0.1, "timeout_s": 0.5, "scrape_interval_s": 0.1},
        "queue": {"deadline_s": 5},
        "timeouts": {"connect_s": 1, "first_byte_s": 5, "idle_s": 5},
    }
    data.update(overrides)
    return RouterConfig.model_validate(data)


@pytest.fixture
def fake_factory() -> Iterator[Callable[..., FakeVllm]]:
    started: list[FakeVllm] = []

    def make(**kwargs: Any) -> FakeVllm:
        kwargs.setdefault("latency", LatencyModel())
        fake = FakeVllm(**kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def router_factory() -> Iterator[Callable[..., RouterServer]]:
    started: list[RouterServer] = []

    def make(cfg: RouterConfig, env: dict[str, str] | None = None) -> RouterServer:
        server = RouterServer(cfg, ENV if env is None else env).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, trust_env=False) as c:
        yield c


def chat(model: str = "primary", content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def wait_until_scraped(router: RouterServer, name: str, predicate: Callable[[Any], bool],
                       timeout: float = 3.0) -> None:
    """Wait until the router's view of backend ``name`` satisfies ``predicate``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(router.state.pool.backends[name]):
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {name} never reached the expected scraped state")


@pytest.fixture(autouse=True)
def _collect_garbage_per_test() -> Iterator[None]:
    """Collect after each test so a leaked socket is reported against the test that leaked it."""
    yield
    import gc

    gc.collect()
