"""The data path: admit, validate, pick a backend, forward, relay bytes unchanged.

The request JSON is parsed once (orjson) and checked at the edge (``validation.py``): a body
of the wrong shape gets a 400 naming the ``param`` and never reaches a backend. The upstream
response is relayed as bytes. A streamed response is held back only to the last complete
SSE event, so a mid-stream failure can end the stream with a clean error event. The client's
response headers are sent only once the upstream produced its first byte, so every failure
before that point can be retried on another backend.

Containment: a failure after the request reached the backend (an upstream 5xx, a dropped
connection, no first byte in time) may follow the request rather than the backend, so it is
held as *suspect* until another backend gives a second opinion. If the retry succeeds, the
suspect backend is charged; if a second backend fails the same way, the request is poison:
it is not tried a third time and no breaker is charged. Connect failures are the backend's
own and count at once. Everything per backend (URLs, headers, metric children) is built once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from .config import RouterConfig
from .containment import forgive, settle
from .errors import error_event, error_response
from .idle import IdleWatch
from .metrics import BackendMetrics, RouterMetrics
from .pool import Backend, NoBackend, Pool, QueueFull, QueueTimeout
from .prefixes import MAX_BLOCKS, prompt_blocks
from .routing import RequestKey, affinity_key, estimate_prompt_tokens, prompt_text
from .upstream import ConnectFailed, FirstByteTimeout, UpstreamPool, UpstreamResponse
from .validation import CHAT_PATH, COMPLETIONS_PATH, validate

__all__ = ["Proxy"]

log = logging.getLogger(__name__)

_TAIL_LIMIT = 1 << 20  # flush a partial SSE event anyway beyond this size
_UPSTREAM_ERRORS = (OSError, TimeoutError)  # UpstreamLost and ConnectFailed are ConnectionErrors
_JSON = "application/json"


@dataclass(slots=True)
class _Failure:
    """The upstream failed before the client saw a byte: retryable.

    ``suspect``: the backend had the request, so the failure may be the request's fault.
    """

    response: web.Response
    suspect: bool


class _Target:
    """What the data path needs about one backend, built once."""

    __slots__ = ("heads", "json_headers", "metrics", "name", "stream_headers", "upstream")

    def __init__(self, backend: Backend, upstream: UpstreamPool, extra_headers: dict[str, str],
                 metrics: BackendMetrics) -> None:
        self.name = backend.name
        self.upstream = upstream
        self.heads = {path: upstream.head(path, {"Content-Type": _JSON, **extra_headers})
                      for path in (CHAT_PATH, COMPLETIONS_PATH)}
        self.json_headers = {"Content-Type": _JSON, "x-swarm-backend": self.name}
        self.stream_headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                               "x-swarm-backend": self.name}
        self.metrics = metrics


class Proxy:
    """Handlers for ``/v1/chat/completions`` and ``/v1/completions``."""

    def __init__(self, cfg: RouterConfig, pool: Pool, metrics: RouterMetrics, api_key: str | None,
                 backend_headers: dict[str, dict[str, str]]) -> None:
        self.cfg = cfg
        self.pool = pool
        self.metrics = metrics
        self.auth = f"Bearer {api_key}".encode() if api_key else None
        self.targets = {b.name: _Target(b, UpstreamPool(b.config.url, cfg.timeouts.connect_s),
                                        backend_headers.get(b.name, {}), metrics.backend(b.name))
                        for b in pool.backends.values()}
        self.first_byte_s = cfg.timeouts.first_byte_s
        self.idle_s = cfg.timeouts.idle_s
        self.retries = cfg.retries
        self.prefix_chars = cfg.affinity.prefix_chars if cfg.affinity.enabled else 0
        self.credit_prefixes = bool(self.prefix_chars and cfg.affinity.cache_tokens)  # cached prefixes predicted
        self.loop: asyncio.AbstractEventLoop  # bound by start(), on the loop that serves requests

    def start(self) -> None:
        """Bind to the running event loop (call from the app's startup)."""
        self.loop = asyncio.get_running_loop()

    def close(self) -> None:
        """Close the kept-alive upstream connections."""
        for target in self.targets.values():
            target.upstream.close()

    def authorized(self, request: web.Request) -> bool:
        if self.auth is None:
            return True
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self.auth)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.loop.time()
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
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
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
        problem = validate(request.path, body)
        if problem is not None:
            self.metrics.count("none", 400)
            return error_response(400, problem.message, code=problem.code, param=problem.param)
        affinity: int | None = None
        blocks: tuple[int, ...] = ()
        if self.prefix_chars:
            text = prompt_text(body, self.prefix_chars * (MAX_BLOCKS if self.credit_prefixes else 1))
            affinity = affinity_key(body, self.prefix_chars, text)
            blocks = prompt_blocks(text, self.prefix_chars) if self.credit_prefixes else ()
        key = self.pool.key(affinity, *estimate_prompt_tokens(len(raw), body), blocks)
        suspects: list[Backend] = []
        try:
            return await self._route(request, raw, model, key, arrived, suspects)
        except asyncio.CancelledError:
            forgive(suspects)  # the client left: no second opinion, and no fault proven
            raise
        finally:
            for backend in suspects:  # no other backend to ask: charge the ones that failed
                backend.breaker.record_failure()

    async def _route(self, request: web.Request, raw: bytes, model: str, key: RequestKey,
                     arrived: float, suspects: list[Backend]) -> web.StreamResponse:
        queue = self.cfg.queue
        deadline = arrived + queue.deadline_s
        exclude: frozenset[str] = frozenset()
        failure: _Failure | None = None
        for attempt in range(self.retries + 1):
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
            target = self.targets[backend.name]
            if attempt:
                target.metrics.retries.inc()
            waited = self.loop.time() - arrived
            if waited > 0.0005:
                self.metrics.queue_wait.observe(waited)
            try:
                result = await self._forward(request, backend, target, raw, arrived, key, suspects)
            finally:
                self.pool.release(backend, key)
            if not isinstance(result, _Failure):
                return result
            failure = result
            if result.suspect:
                suspects.append(backend)
                if len(suspects) >= 2:
                    forgive(suspects)
                    log.warning("request for %s failed on two backends: poison, not retried, no breaker charged",
                                model)
                    self.metrics.poison.inc()
                    return result.response
            exclude = exclude | {backend.name}
        return failure.response if failure is not None else error_response(502, "No attempt was made.")

    async def _forward(self, request: web.Request, backend: Backend, target: _Target, raw: bytes,
                       arrived: float, key: RequestKey, suspects: list[Backend]) -> web.StreamResponse | _Failure:
        sent = self.loop.time()
        resp: UpstreamResponse | None = None
        try:
            try:
                resp = await target.upstream.request(target.heads[request.path], raw, sent + self.first_byte_s)
                status = resp.status
                ctype = resp.content_type or _JSON
                if status >= 500 or status == 429:
                    body = await resp.read()
                    return self._upstream_failed(backend, target, status, body, ctype)
                if not ctype.startswith("text/event-stream"):
                    body = await resp.read()
                    backend.breaker.record_success()
                    if suspects:
                        settle(suspects, status)
                    self._observe(backend, target, status, arrived, sent, self.loop.time())
                    headers = target.json_headers if ctype == _JSON else {**target.json_headers,
                                                                           "Content-Type": ctype}
                    return web.Response(status=status, body=body, headers=headers)
                first = await resp.readany()
            except ConnectFailed as exc:  # the request never left
                return self._unreachable(backend, target, exc, suspect=False)
            except FirstByteTimeout:
                target.metrics.count(504)
                return _Failure(error_response(504, f"Backend `{backend.name}` sent no byte within "
                                               f"{self.first_byte_s:g} s.", "upstream_error", "upstream_timeout"),
                                suspect=True)
            except _UPSTREAM_ERRORS as exc:
                return self._unreachable(backend, target, exc, suspect=True)
            resp.disarm()
            if not first:
                return self._unreachable(backend, target, ConnectionResetError("empty stream"), suspect=True)
            if suspects:
                settle(suspects, status)
            return await self._relay(request, backend, target, resp, status, ctype, first, arrived, sent, key)
        finally:
            if resp is not None:
                resp.close()

    async def _relay(self, request: web.Request, backend: Backend, target: _Target, resp: UpstreamResponse,
                     status: int, ctype: str, first: bytes, arrived: float, sent: float,
                     key: RequestKey) -> web.StreamResponse:
        loop = self.loop
        upstream_first = loop.time()
        headers = target.stream_headers if ctype == "text/event-stream" else {**target.stream_headers,
                                                                              "Content-Type": ctype}
        out = web.StreamResponse(status=status, headers=headers)
        await out.prepare(request)
        events = ctype == "text/event-stream"  # count them: vLLM sends one per engine step (the estimator's progress)
        tail = b""
        chunk = first
        failure: str | None = None
        watch = IdleWatch(loop, self.idle_s)
        try:
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
                    if events and (n := data.count(b"\n\n", 0, cut) - data.endswith(b"[DONE]\n\n", 0, cut)) > 0:
                        backend.est.streamed(key.seq, n)
                    if upstream_first:
                        self._observe(backend, target, status, arrived, sent, upstream_first)
                        backend.est.first_token(key.seq, upstream_first - sent)
                        upstream_first = 0.0
                chunk = await resp.readany()
                watch.last = loop.time()
        except asyncio.CancelledError:
            if not watch.fired or watch.task.uncancel() > 0:
                raise
            failure = f"Backend `{backend.name}` stalled for more than {self.idle_s:g} s mid-stream."
        except _UPSTREAM_ERRORS as exc:
            failure = f"Backend `{backend.name}` failed mid-stream: {type(exc).__name__}."
        finally:
            watch.cancel()
        try:
            if failure is not None:
                backend.breaker.record_failure()
                target.metrics.stream_errors.inc()
                await out.write(error_event(failure))
            else:
                backend.breaker.record_success()
                if tail:
                    await out.write(tail)
            await out.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass
        return out

    def _observe(self, backend: Backend, target: _Target, status: int, arrived: float, sent: float,
                 upstream_first: float) -> None:
        now = self.loop.time()
        backend.observe_ttft(upstream_first - sent)
        metrics = target.metrics
        metrics.count(status)
        metrics.ttft.observe(now - arrived)
        self.metrics.added.observe(max(0.0, (now - arrived) - (upstream_first - sent)))

    def _upstream_failed(self, backend: Backend, target: _Target, status: int, body: bytes, ctype: str) -> _Failure:
        target.metrics.count(status)
        log.warning("backend %s answered %d", backend.name, status)
        return _Failure(web.Response(status=status, body=body,
                                     headers={"Content-Type": ctype, "x-swarm-backend": backend.name}),
                        suspect=status >= 500)

    def _unreachable(self, backend: Backend, target: _Target, exc: BaseException, *, suspect: bool) -> _Failure:
        if not suspect:
            backend.breaker.record_failure()
        target.metrics.count(502)
        log.warning("backend %s failed before answering: %r", backend.name, exc)
        return _Failure(error_response(502, f"Backend `{backend.name}` failed before answering: "
                                       f"{type(exc).__name__}.", "upstream_error", "upstream_unreachable"),
                        suspect=suspect)


def _too_large(limit: int) -> web.Response:
    return error_response(413, f"The request body exceeds the {limit}-byte limit.", code="body_too_large")
