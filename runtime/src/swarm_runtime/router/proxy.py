"""The data path: admit, pick a backend, forward, relay bytes unchanged.

Only the request JSON's ``model`` (and ``user`` / prompt prefix for affinity) is read; the
upstream response is relayed as bytes. A streamed response is held back only to the last
complete SSE event, so a mid-stream failure can end the stream with a clean error event.
The client's response headers are sent only once the upstream produced its first byte, so
every failure before that point is retried once on another backend.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from yarl import URL

from .config import RouterConfig
from .errors import error_event, error_response
from .metrics import RouterMetrics
from .pool import Backend, NoBackend, Pool, QueueFull, QueueTimeout
from .routing import RequestKey, affinity_key

__all__ = ["Proxy"]

log = logging.getLogger(__name__)

_TAIL_LIMIT = 1 << 20  # flush a partial SSE event anyway beyond this size
_UPSTREAM_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass(slots=True)
class _Failure:
    """The upstream failed before the client saw a byte: retryable."""

    response: web.Response


class Proxy:
    """Handlers for ``/v1/chat/completions`` and ``/v1/completions``."""

    def __init__(self, cfg: RouterConfig, pool: Pool, session: aiohttp.ClientSession,
                 metrics: RouterMetrics, api_key: str | None, backend_headers: dict[str, dict[str, str]]) -> None:
        self.cfg = cfg
        self.pool = pool
        self.session = session
        self.metrics = metrics
        self.auth = f"Bearer {api_key}".encode() if api_key else None
        self.headers = {name: {"Content-Type": "application/json", **extra}
                        for name, extra in backend_headers.items()}
        self.urls = {(b.name, path): URL(b.config.url + path, encoded=True)
                     for b in pool.backends.values() for path in ("/v1/chat/completions", "/v1/completions")}
        self.client_timeout = aiohttp.ClientTimeout(total=None, connect=cfg.timeouts.connect_s,
                                                    sock_connect=cfg.timeouts.connect_s)
        self.first_byte_s = cfg.timeouts.first_byte_s
        self.idle_s = cfg.timeouts.idle_s
        self.prefix_chars = cfg.affinity.prefix_chars if cfg.affinity.enabled else 0

    def authorized(self, request: web.Request) -> bool:
        if self.auth is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self.auth)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        if not self.authorized(request):
            return error_response(401, "Missing or invalid API key. Send `Authorization: Bearer <key>`.",
                                  "authentication_error", "invalid_api_key")
        limit = self.cfg.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(limit)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return error_response(400, f"The request body is not valid JSON: {exc}", code="invalid_json")
        if not isinstance(body, dict):
            return error_response(400, "The request body must be a JSON object.", code="invalid_json")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return error_response(400, "`model` is required and must be a string.", param="model",
                                  code="missing_model")
        if model not in self.pool.by_model:
            return error_response(404, f"The model `{model}` does not exist. Available: "
                                  f"{', '.join(self.pool.models())}.", param="model", code="model_not_found")
        affinity = affinity_key(body, self.prefix_chars) if self.prefix_chars else None
        return await self._route(request, raw, model, self.pool.key(affinity), arrived)

    async def _route(self, request: web.Request, raw: bytes, model: str, key: RequestKey,
                     arrived: float) -> web.StreamResponse:
        queue = self.cfg.queue
        deadline = arrived + queue.deadline_s
        exclude: frozenset[str] = frozenset()
        failure: _Failure | None = None
        for _ in range(self.cfg.retries + 1):
            try:
                backend = await self.pool.acquire(model, key, deadline, exclude)
            except NoBackend:
                if failure is not None:
                    return failure.response
                self.metrics.count("none", 503)
                return error_response(503, f"No healthy backend serves `{model}` right now.", "server_error",
                                      "no_healthy_backend", retry_after=queue.retry_after_s)
            except QueueFull:
                self.metrics.count("none", 429)
                return error_response(429, "Every backend is at capacity and the wait queue is full.",
                                      "rate_limit_error", "queue_full", retry_after=queue.retry_after_s)
            except QueueTimeout:
                self.metrics.count("none", 503)
                return error_response(503, f"No backend slot freed up within {queue.deadline_s:g} s.",
                                      "server_error", "queue_timeout", retry_after=queue.retry_after_s)
            waited = asyncio.get_running_loop().time() - arrived
            if waited > 0.0005:
                self.metrics.queue_wait.observe(waited)
            try:
                result = await self._forward(request, backend, raw, arrived)
            finally:
                self.pool.release(backend)
            if not isinstance(result, _Failure):
                return result
            failure = result
            exclude = exclude | {backend.name}
            self.metrics.retries.labels(backend.name).inc()
        return failure.response if failure is not None else error_response(502, "No attempt was made.")

    async def _forward(self, request: web.Request, backend: Backend, raw: bytes,
                       arrived: float) -> web.StreamResponse | _Failure:
        loop = asyncio.get_running_loop()
        name = backend.name
        sent = loop.time()
        resp: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.first_byte_s) as deadline:
                try:
                    resp = await self.session.post(self.urls[(name, request.path)], data=raw,
                                                   headers=self.headers[name], timeout=self.client_timeout)
                    status = resp.status
                    ctype = resp.headers.get("Content-Type", "application/json")
                    if status >= 500 or status == 429:
                        body = await resp.read()
                        return self._upstream_failed(backend, status, body, ctype)
                    if not ctype.startswith("text/event-stream"):
                        body = await resp.read()
                        backend.breaker.record_success()
                        self._observe(backend, status, arrived, sent, loop.time())
                        return web.Response(status=status, body=body,
                                            headers={"Content-Type": ctype, "x-swarm-backend": name})
                    first = await resp.content.readany()
                except aiohttp.ServerTimeoutError as exc:  # connect timeout: aiohttp's, not ours
                    return self._unreachable(backend, exc)
                except TimeoutError:
                    raise
                except _UPSTREAM_ERRORS as exc:
                    return self._unreachable(backend, exc)
                deadline.reschedule(None)
            if not first:
                return self._unreachable(backend, ConnectionResetError("empty stream"))
            return await self._relay(request, backend, resp, status, ctype, first, arrived, sent)
        except TimeoutError:
            backend.breaker.record_failure()
            self.metrics.count(name, 504)
            return _Failure(error_response(504, f"Backend `{name}` sent no byte within "
                                           f"{self.first_byte_s:g} s.", "upstream_error", "upstream_timeout"))
        finally:
            if resp is not None:
                resp.close()

    async def _relay(self, request: web.Request, backend: Backend, resp: aiohttp.ClientResponse,
                     status: int, ctype: str, first: bytes, arrived: float, sent: float) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        name = backend.name
        upstream_first = loop.time()
        out = web.StreamResponse(status=status, headers={"Content-Type": ctype, "Cache-Control": "no-cache",
                                                         "x-swarm-backend": name})
        await out.prepare(request)
        reader = resp.content
        tail = b""
        chunk = first
        failure: str | None = None
        try:
            async with asyncio.timeout(self.idle_s) as idle:
                while chunk:
                    data = tail + chunk if tail else chunk
                    cut = max(data.rfind(b"\n\n") + 2, data.rfind(b"\r\n\r\n") + 4)
                    if cut <= 3 and len(data) < _TAIL_LIMIT:
                        tail = data
                    else:
                        if cut <= 3:
                            cut = len(data)
                        tail = data[cut:]
                        try:
                            await out.write(data[:cut] if tail else data)
                        except (ConnectionError, aiohttp.ClientConnectionResetError):
                            return out  # the client left; closing resp cancels the upstream
                        if upstream_first:
                            self._observe(backend, status, arrived, sent, upstream_first)
                            upstream_first = 0.0
                    chunk = await reader.readany()
                    idle.reschedule(loop.time() + self.idle_s)
        except TimeoutError:
            failure = f"Backend `{name}` stalled for more than {self.idle_s:g} s mid-stream."
        except _UPSTREAM_ERRORS as exc:
            failure = f"Backend `{name}` failed mid-stream: {type(exc).__name__}."
        try:
            if failure is not None:
                backend.breaker.record_failure()
                self.metrics.stream_errors.labels(name).inc()
                await out.write(error_event(failure))
            else:
                backend.breaker.record_success()
                if tail:
                    await out.write(tail)
            await out.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return out

    def _observe(self, backend: Backend, status: int, arrived: float, sent: float, upstream_first: float) -> None:
        now = asyncio.get_running_loop().time()
        name = backend.name
        backend.observe_ttft(upstream_first - sent)
        self.metrics.count(name, status)
        self.metrics.ttft.labels(name).observe(now - arrived)
        self.metrics.added.observe(max(0.0, (now - arrived) - (upstream_first - sent)))

    def _upstream_failed(self, backend: Backend, status: int, body: bytes, ctype: str) -> _Failure:
        if status >= 500:
            backend.breaker.record_failure()
        self.metrics.count(backend.name, status)
        log.warning("backend %s answered %d", backend.name, status)
        return _Failure(web.Response(status=status, body=body,
                                     headers={"Content-Type": ctype, "x-swarm-backend": backend.name}))

    def _unreachable(self, backend: Backend, exc: BaseException) -> _Failure:
        backend.breaker.record_failure()
        self.metrics.count(backend.name, 502)
        log.warning("backend %s unreachable: %r", backend.name, exc)
        return _Failure(error_response(502, f"Backend `{backend.name}` failed before answering: "
                                       f"{type(exc).__name__}.", "upstream_error", "upstream_unreachable"))


def _too_large(limit: int) -> web.Response:
    return error_response(413, f"The request body exceeds the {limit}-byte limit.", code="body_too_large")
