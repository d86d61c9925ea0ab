"""Assemble the router's aiohttp application from a config and an environment."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from swarm_runtime.secrets import SecretError, read_secret

from .admin import Admin
from .config import RouterConfig
from .containment import install as install_containment
from .errors import error_response
from .metrics import RouterMetrics
from .monitor import Monitor
from .pool import Pool
from .proxy import Proxy
from .routing import make_load_strategy, round_robin

__all__ = ["RouterState", "SecretMissing", "build_app"]

log = logging.getLogger(__name__)
STATE: web.AppKey[RouterState] = web.AppKey("router_state")


class SecretMissing(Exception):
    """An environment variable the config names is not set."""


class RouterState:
    """Everything one router app owns. Not a singleton: tests run several side by side."""

    def __init__(self, cfg: RouterConfig, env: Mapping[str, str]) -> None:
        self.cfg = cfg
        if cfg.api_key_file:
            self.api_key: str | None = _secret_file(cfg.api_key_file, "api_key_file")
        else:
            self.api_key = _secret(env, cfg.api_key_env, "api_key_env") if cfg.api_key_env else None
        if cfg.admin_key_file:
            self.admin_key: str | None = _secret_file(cfg.admin_key_file, "admin_key_file")
        else:
            self.admin_key = env.get(cfg.admin_key_env) or None
        self.backend_headers: dict[str, dict[str, str]] = {}
        for i, backend in enumerate(cfg.backends):
            if backend.api_key_file:
                key: str | None = _secret_file(backend.api_key_file, f"backends.{i}.api_key_file")
            else:
                key = _secret(env, backend.api_key_env, f"backends.{i}.api_key_env") if backend.api_key_env else None
            self.backend_headers[backend.name] = {"Authorization": f"Bearer {key}"} if key else {}
        strategy = make_load_strategy(cfg.affinity.slack) if cfg.strategy == "load" else round_robin
        self.pool = Pool(cfg.backends, cfg.breaker, strategy, cfg.queue.max_size,
                         late=cfg.late_binding if cfg.strategy == "load" else None,
                         affinity=cfg.affinity)
        install_containment(self.pool, cfg.breaker)
        self.metrics = RouterMetrics(self.pool)
        self.proxy = Proxy(cfg, self.pool, self.metrics, self.api_key, self.backend_headers)
        self.session: aiohttp.ClientSession | None = None
        self.monitor: Monitor | None = None


def _secret(env: Mapping[str, str], name: str, path: str) -> str:
    value = env.get(name)
    if not value:
        raise SecretMissing(f"{path}: environment variable {name} is not set (or empty); "
                            "set it, or remove the key from the config")
    return value


def _secret_file(path: str, config_key: str) -> str:
    try:
        value = read_secret(path, None, config_key)
    except SecretError as exc:
        raise SecretMissing(str(exc)) from exc
    return value or ""  # read_secret returns the content, or raises, when given a path


def build_app(cfg: RouterConfig, env: Mapping[str, str] | None = None) -> web.Application:
    """The router app; secrets come from ``env`` (default ``os.environ``)."""
    state = RouterState(cfg, os.environ if env is None else env)
    app = web.Application(client_max_size=cfg.max_body_bytes)
    app[STATE] = state
    admin = Admin(state.pool, state.admin_key, cfg.admin_key_env)

    async def models(request: web.Request) -> web.Response:
        if not state.proxy.authorized(request):
            return error_response(401, "Missing or invalid API key.", "authentication_error", "invalid_api_key")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "swarm-router"} for m in state.pool.models()]
        return web.json_response({"object": "list", "data": data})

    async def health(request: web.Request) -> web.Response:
        up = any(b.available() for b in state.pool.backends.values())
        return web.json_response({"status": "ok" if up else "degraded",
                                  "healthy_backends": sum(b.available() for b in state.pool.backends.values())})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(state.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def fallback(request: web.Request) -> web.Response:
        if request.path in ("/v1/chat/completions", "/v1/completions"):
            return error_response(405, f"Use POST for {request.path}.", code="method_not_allowed")
        return error_response(404, f"Unknown path {request.path}.", code="not_found")

    app.router.add_post("/v1/chat/completions", state.proxy.handle)  # bound method: no wrapper frame per request
    app.router.add_post("/v1/completions", state.proxy.handle)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_routes(admin.routes())
    app.router.add_route("*", "/{tail:.*}", fallback)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=60)
    state.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                          skip_auto_headers=("User-Agent",))
    state.proxy.start()
    state.monitor = Monitor(state.pool, state.session, state.cfg.health, state.backend_headers)
    state.monitor.start()
    log.info("swarm-router ready: %d backends, models %s", len(state.pool.backends), state.pool.models())
    try:
        yield
    finally:
        await state.monitor.stop()
        state.proxy.close()
        await state.session.close()
