"""An OpenAI-compatible fake vLLM server for tests, benchmarks and manual runs.

It serves the endpoints the router and autotuner touch (``/v1/chat/completions``,
``/v1/completions``, ``/v1/models``, ``/health``, ``/metrics``) with controllable latency,
failures and metrics. ``/metrics`` reflects what the server is actually doing: running and
waiting counts follow the in-flight requests (with a ``max_num_seqs`` emulation), and the
TTFT / inter-token / e2e / queue histograms record what it served.

Use :class:`FakeVllm` from synchronous code (it runs its own loop in a thread) or
``await fake.start_async()`` inside a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from swarm_runtime.testing.fake_engine import (
    CapacityGate,
    Faults,
    Pacer,
    Slot,
    abort,
    error,
    max_tokens,
    prompt_len,
    token,
)
from swarm_runtime.testing.latency import E2E_BUCKETS, ITL_BUCKETS, TTFT_BUCKETS, FakeHistogram, LatencyModel
from swarm_runtime.testing.loops import drain_and_close

__all__ = ["FakeVllm", "LatencyModel", "drain_and_close"]

MetricsStyle = Literal["new", "old"]
_HANG_LIMIT_S = 120.0  # a hung request is released after this, so nothing waits forever

class FakeVllm:
    """A controllable fake of ``vllm serve`` bound to 127.0.0.1. Controls are thread-safe."""

    def __init__(
        self,
        models: list[str] | None = None,
        port: int = 0,
        latency: LatencyModel | None = None,
        metrics_style: MetricsStyle = "new",
        api_key: str | None = None,
        name: str | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.models = list(models or ["primary"])
        self.port = port
        self.metrics_style: MetricsStyle = metrics_style
        self.api_key = api_key
        self.name = name
        self._latency = latency or LatencyModel()
        self._faults = Faults()
        self._lock = threading.Lock()
        self.requests_served = 0  # completions answered in full
        self.requests_received = 0
        self.requests_aborted = 0  # client went away before the answer was complete
        self.in_flight = 0
        self.peak_in_flight = 0
        self.running = 0
        self.waiting = 0
        self.last_request: dict[str, Any] | None = None
        self._generation_tokens = 0
        self._prompt_tokens = 0
        # A simulation running time_scale x faster keeps vLLM's histogram resolution.
        self._hists = {k: FakeHistogram(tuple(x / time_scale for x in b)) for k, b in
                       (("ttft", TTFT_BUCKETS), ("itl", ITL_BUCKETS), ("e2e", E2E_BUCKETS),
                        ("queue", E2E_BUCKETS))}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[Any] = set()
        self._slots: asyncio.Semaphore | None = None
        self._gate = CapacityGate()  # admission by LatencyModel.capacity_fn, when set
        self._release: asyncio.Event | None = None

    # ----- controls -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def latency(self) -> LatencyModel:
        return self._latency

    def set_latency(self, latency: LatencyModel) -> None:
        with self._lock:
            self._latency = latency

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` completion requests with an HTTP error before any byte."""
        with self._lock:
            self._faults.fail_next, self._faults.fail_status = n, status

    def fail_mid_stream(self, after_tokens: int, n: int = 1) -> None:
        """Drop the connection of the next ``n`` streams after ``after_tokens`` chunks."""
        with self._lock:
            self._faults.fail_after_tokens, self._faults.fail_mid_stream_next = after_tokens, n

    def hang_next(self, n: int) -> None:
        """Accept the next ``n`` completion requests and never send a byte (until stop)."""
        with self._lock:
            self._faults.hang_next = n

    def stall_mid_stream(self, after_tokens: int, n: int = 1) -> None:
        """Stop sending (keep the connection open) after ``after_tokens`` chunks."""
        with self._lock:
            self._faults.stall_after_tokens, self._faults.stall_next = after_tokens, n

    def set_healthy(self, healthy: bool) -> None:
        """``/health`` answers 503 while unhealthy; completions still work."""
        with self._lock:
            self._faults.healthy = healthy

    def set_metrics_override(self, **values: float | None) -> None:
        """Pin ``running``, ``waiting``, ``kv_cache_usage`` or ``preemptions_total``; None unpins."""
        allowed = {"running", "waiting", "kv_cache_usage", "preemptions_total"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"unknown metric override {sorted(unknown)}; allowed: {sorted(allowed)}")
        with self._lock:
            for key, value in values.items():
                if value is None:
                    self._faults.overrides.pop(key, None)
                else:
                    self._faults.overrides[key] = float(value)

    def _take(self, counter: str) -> bool:
        with self._lock:
            left = getattr(self._faults, counter)
            if left > 0:
                setattr(self._faults, counter, left - 1)
                return True
            return False

    # ----- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeVllm:
        """Start in a background thread with its own event loop; returns once listening."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                drain_and_close(loop)

        self._thread = threading.Thread(target=run, name=f"fake-vllm-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(5)
        asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(10)
        return self

    def stop(self) -> None:
        """Stop abruptly (in-flight requests are cut) and join the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    async def start_async(self) -> FakeVllm:
        """Start inside the running loop (the port is kept across restarts)."""
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        max_seqs = self._latency.max_num_seqs
        self._slots = asyncio.Semaphore(max_seqs) if max_seqs else None
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        handler_factory = self._runner.server
        assert handler_factory is not None

        def protocol() -> asyncio.Protocol:
            # Hold every connection so stop() can close it: aiohttp drops a connection whose
            # peer vanished while its reading was paused, leaving the socket to the GC.
            handler = handler_factory()
            if len(self._connections) > 256:
                self._connections = {h for h in self._connections if h.transport is not None}
            self._connections.add(handler)
            return handler

        self._server = await self._loop.create_server(protocol, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop_async(self) -> None:
        """Stop inside the running loop: refuse new connections, cut the open ones."""
        if self._release is not None:
            self._release.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        for handler in self._connections:
            if handler.transport is not None:
                handler.transport.abort()
        self._connections = set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> FakeVllm:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ----- handlers -------------------------------------------------------------------

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return error(401, "Unauthorized", "invalid_api_key")

    async def _models(self, request: web.Request) -> web.Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "vllm"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self._faults.healthy else 503)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid JSON body", "BadRequestError")
        if not isinstance(body, dict) or body.get("model") not in self.models:
            return error(404, f"The model `{body.get('model') if isinstance(body, dict) else None}` "
                               "does not exist.", "NotFoundError")
        self.requests_received += 1
        self.last_request = body
        if self._take("fail_next"):
            return error(self._faults.fail_status, "injected failure", "InternalServerError")
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._serve(request, body)
        except (asyncio.CancelledError, ConnectionError):
            self.requests_aborted += 1
            raise
        finally:
            self.in_flight -= 1

    async def _serve(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        arrived = time.perf_counter()
        if self._take("hang_next"):
            assert self._release is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._release.wait(), _HANG_LIMIT_S)
            raise ConnectionResetError("fake hang released")
        async with Slot(self):
            queued = time.perf_counter() - arrived
            latency = self._latency
            pacer = Pacer()
            ttft, _ = latency.timing(self.running)
            await pacer.wait(ttft)
            tokens = max_tokens(body, latency.tokens)
            chat = request.path.endswith("/chat/completions")
            self._prompt_tokens += prompt_len(body)
            if body.get("stream"):
                response = await self._stream(request, body, tokens, chat, arrived, pacer)
            else:
                response = await self._whole(body, tokens, chat, arrived, pacer)
            self._hists["queue"].observe(queued)
            self._hists["e2e"].observe(time.perf_counter() - arrived)
            self.requests_served += 1
            return response

    async def _whole(self, body: dict[str, Any], tokens: int, chat: bool, arrived: float,
                     pacer: Pacer) -> web.Response:
        self._hists["ttft"].observe(time.perf_counter() - arrived)
        for _ in range(tokens - 1):
            _, per_token = self._latency.timing(self.running)
            if per_token > 0:
                await pacer.wait(per_token)
                self._hists["itl"].observe(per_token)
        self._generation_tokens += tokens
        text = " ".join(token(i) for i in range(tokens))
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        payload = {
            "id": "cmpl-fake", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": body["model"], "choices": [choice],
            "usage": {"prompt_tokens": prompt_len(body), "completion_tokens": tokens,
                      "total_tokens": prompt_len(body) + tokens},
        }
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json",
                            headers=self._identity())

    async def _stream(self, request: web.Request, body: dict[str, Any], tokens: int, chat: bool,
                      arrived: float, pacer: Pacer) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache", **self._identity()})
        await response.prepare(request)
        fail_after = self._faults.fail_after_tokens if self._take("fail_mid_stream_next") else None
        stall_after = self._faults.stall_after_tokens if self._take("stall_next") else None
        obj = "chat.completion.chunk" if chat else "text_completion"
        created = int(time.time())
        last = time.perf_counter()
        for i in range(tokens):
            if i == fail_after:
                abort(request)
                raise ConnectionResetError("injected mid-stream failure")
            if i == stall_after:
                assert self._release is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._release.wait(), _HANG_LIMIT_S)
                raise ConnectionResetError("fake stall released")
            if i > 0:
                _, per_token = self._latency.timing(self.running)
                await pacer.wait(per_token)
            now = time.perf_counter()
            self._hists["ttft" if i == 0 else "itl"].observe(now - (arrived if i == 0 else last))
            last = now
            finish = "length" if i == tokens - 1 else None
            piece = token(i) + ("" if i == tokens - 1 else " ")
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
            if chat:
                choice["delta"] = {"content": piece} if i else {"role": "assistant", "content": piece}
            else:
                choice["text"] = piece
            chunk = {"id": "cmpl-fake", "object": obj, "created": created, "model": body["model"],
                     "choices": [choice]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self._generation_tokens += 1
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _identity(self) -> dict[str, str]:
        return {"x-fake-vllm": self.name or str(self.port)}

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics_text(), content_type="text/plain")

    def metrics_text(self) -> str:
        """The ``/metrics`` exposition, in vLLM's current or deprecated naming."""
        with self._lock:
            overrides = dict(self._faults.overrides)
        running = overrides.get("running", float(self.running))
        waiting = overrides.get("waiting", float(self.waiting))
        kv = overrides.get("kv_cache_usage", self._latency.kv_usage(self.running))
        preempt = overrides.get("preemptions_total", 0.0)
        new = self.metrics_style == "new"
        labels = f'engine="0",model_name="{self.models[0]}"'
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{labels}}} {running}",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{labels}}} {waiting}",
            "# TYPE vllm:{} gauge".format("kv_cache_usage_perc" if new else "gpu_cache_usage_perc"),
            "vllm:{}{{{}}} {}".format("kv_cache_usage_perc" if new else "gpu_cache_usage_perc", labels, kv),
            "# TYPE vllm:num_preemptions_total counter",
            f"vllm:num_preemptions_total{{{labels}}} {preempt}",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{labels}}} {float(self._prompt_tokens)}",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{labels}}} {float(self._generation_tokens)}",
        ]
        itl = "vllm:inter_token_latency_seconds" if new else "vllm:time_per_output_token_seconds"
        for key, name in (("ttft", "vllm:time_to_first_token_seconds"), ("itl", itl),
                          ("e2e", "vllm:e2e_request_latency_seconds"),
                          ("queue", "vllm:request_queue_time_seconds")):
            lines.extend(self._hists[key].lines(name, labels))
        return "\n".join(lines) + "\n"
