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

import argparse
import asyncio
import contextlib
import gc
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

__all__ = ["FakeVllm", "LatencyModel", "drain_and_close", "main"]

LatencyFn = Callable[[int], tuple[float, float]]
MetricsStyle = Literal["new", "old"]
_HANG_LIMIT_S = 120.0  # a hung request is released after this, so nothing waits forever

_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
_ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
_E2E_BUCKETS = (0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)


@dataclass(frozen=True)
class LatencyModel:
    """How long the fake takes, as a function of how many sequences it is running.

    Beyond ``knee`` running sequences both delays grow by ``slope`` (a fraction) per extra
    sequence, so throughput saturates and latency climbs, like a real GPU batch. Beyond
    ``max_num_seqs`` requests wait (reported as ``num_requests_waiting``). ``fn`` overrides
    the formula: ``fn(running) -> (ttft_s, per_token_s)``.
    """

    ttft_s: float = 0.0
    per_token_s: float = 0.0
    tokens: int = 16
    max_num_seqs: int | None = None
    knee: int | None = None
    slope: float | None = None
    fn: LatencyFn | None = None

    def timing(self, running: int) -> tuple[float, float]:
        """``(ttft_s, per_token_s)`` while ``running`` sequences share the engine."""
        if self.fn is not None:
            return self.fn(running)
        factor = 1.0
        if self.knee is not None and self.slope is not None and running > self.knee:
            factor += self.slope * (running - self.knee)
        return self.ttft_s * factor, self.per_token_s * factor


class _Hist:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str) -> Iterator[str]:
        yield f"# TYPE {name} histogram"
        cumulative = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            cumulative += n
            yield f'{name}_bucket{{le="{bound}",{labels}}} {float(cumulative)}'
        yield f'{name}_bucket{{le="+Inf",{labels}}} {float(self.count)}'
        yield f"{name}_sum{{{labels}}} {self.sum}"
        yield f"{name}_count{{{labels}}} {float(self.count)}"


@dataclass
class _Faults:
    fail_next: int = 0
    fail_status: int = 500
    fail_after_tokens: int | None = None
    fail_mid_stream_next: int = 0
    hang_next: int = 0
    stall_after_tokens: int | None = None
    stall_next: int = 0
    healthy: bool = True
    overrides: dict[str, float] = field(default_factory=dict)


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
    ) -> None:
        self.models = list(models or ["primary"])
        self.port = port
        self.metrics_style: MetricsStyle = metrics_style
        self.api_key = api_key
        self.name = name
        self._latency = latency or LatencyModel()
        self._faults = _Faults()
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
        self._hists = {k: _Hist(b) for k, b in
                       (("ttft", _TTFT_BUCKETS), ("itl", _ITL_BUCKETS), ("e2e", _E2E_BUCKETS),
                        ("queue", _E2E_BUCKETS))}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[Any] = set()
        self._slots: asyncio.Semaphore | None = None
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
        return _error(401, "Unauthorized", "invalid_api_key")

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
            return _error(400, "invalid JSON body", "BadRequestError")
        if not isinstance(body, dict) or body.get("model") not in self.models:
            return _error(404, f"The model `{body.get('model') if isinstance(body, dict) else None}` "
                               "does not exist.", "NotFoundError")
        self.requests_received += 1
        self.last_request = body
        if self._take("fail_next"):
            return _error(self._faults.fail_status, "injected failure", "InternalServerError")
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
        async with _Slot(self):
            queued = time.perf_counter() - arrived
            latency = self._latency
            pacer = _Pacer()
            ttft, _ = latency.timing(self.running)
            await pacer.wait(ttft)
            tokens = _max_tokens(body, latency.tokens)
            chat = request.path.endswith("/chat/completions")
            self._prompt_tokens += _prompt_len(body)
            if body.get("stream"):
                response = await self._stream(request, body, tokens, chat, arrived, pacer)
            else:
                response = await self._whole(body, tokens, chat, arrived, pacer)
            self._hists["queue"].observe(queued)
            self._hists["e2e"].observe(time.perf_counter() - arrived)
            self.requests_served += 1
            return response

    async def _whole(self, body: dict[str, Any], tokens: int, chat: bool, arrived: float,
                     pacer: _Pacer) -> web.Response:
        self._hists["ttft"].observe(time.perf_counter() - arrived)
        for _ in range(tokens - 1):
            _, per_token = self._latency.timing(self.running)
            if per_token > 0:
                await pacer.wait(per_token)
                self._hists["itl"].observe(per_token)
        self._generation_tokens += tokens
        text = " ".join(_token(i) for i in range(tokens))
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        payload = {
            "id": "cmpl-fake", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": body["model"], "choices": [choice],
            "usage": {"prompt_tokens": _prompt_len(body), "completion_tokens": tokens,
                      "total_tokens": _prompt_len(body) + tokens},
        }
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json",
                            headers=self._identity())

    async def _stream(self, request: web.Request, body: dict[str, Any], tokens: int, chat: bool,
                      arrived: float, pacer: _Pacer) -> web.StreamResponse:
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
                _abort(request)
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
            piece = _token(i) + ("" if i == tokens - 1 else " ")
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
        capacity = self._latency.max_num_seqs or 64
        running = overrides.get("running", float(self.running))
        waiting = overrides.get("waiting", float(self.waiting))
        kv = overrides.get("kv_cache_usage", min(1.0, self.running / capacity))
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


def drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close every connection and task left on a stopped loop, then the loop, leaking no socket.

    A connection accepted in the instant a server shuts down can get a transport whose
    protocol never hears of it (and which the loop's own registry may no longer list), so
    the transports bound to this loop are found through the garbage collector's view and
    aborted before the loop closes.
    """
    loop.run_until_complete(asyncio.sleep(0.01))
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Transport) and getattr(obj, "_loop", None) is loop:
            obj.abort()
    loop.run_until_complete(asyncio.sleep(0.01))  # connection_lost callbacks close the sockets
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class _Pacer:
    """Sleeps to absolute deadlines, so event-loop lag does not stretch a fake generation
    (a GPU's token cadence does not slow down because the host CPU is busy)."""

    def __init__(self) -> None:
        self.due = time.perf_counter()

    async def wait(self, delay: float) -> None:
        if delay <= 0:
            return
        self.due += delay
        remaining = self.due - time.perf_counter()
        if remaining > 0:
            await asyncio.sleep(remaining)


class _Slot:
    """Admission to the fake engine: beyond ``max_num_seqs`` a request waits."""

    def __init__(self, fake: FakeVllm) -> None:
        self.fake = fake

    async def __aenter__(self) -> None:
        fake = self.fake
        if fake._slots is not None:
            fake.waiting += 1
            try:
                await fake._slots.acquire()
            finally:
                fake.waiting -= 1
        fake.running += 1

    async def __aexit__(self, *exc: object) -> None:
        self.fake.running -= 1
        if self.fake._slots is not None:
            self.fake._slots.release()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"object": "error", "message": message, "type": kind, "param": None,
                              "code": status}, status=status)


def _max_tokens(body: dict[str, Any], default: int) -> int:
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096:
        return value
    return max(1, default)


def _prompt_len(body: dict[str, Any]) -> int:
    prompt = body.get("prompt") or body.get("messages") or ""
    return max(1, math.ceil(len(json.dumps(prompt)) / 4))


def _token(i: int) -> str:
    return f"tok{i}"


def main(argv: list[str] | None = None) -> None:
    """``swarm-fake-vllm``: run a fake vLLM server in the foreground (Ctrl-C stops it)."""
    parser = argparse.ArgumentParser(prog="swarm-fake-vllm", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", action="append", help="served model name (repeatable)")
    parser.add_argument("--ttft", type=float, default=0.05, help="seconds to the first token")
    parser.add_argument("--per-token", type=float, default=0.02, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per answer")
    parser.add_argument("--max-num-seqs", type=int, default=None)
    parser.add_argument("--metrics-style", choices=["new", "old"], default="new")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    latency = LatencyModel(args.ttft, args.per_token, args.tokens, max_num_seqs=args.max_num_seqs)
    fake = FakeVllm(args.model or ["primary"], args.port, latency, args.metrics_style, args.api_key)

    async def serve() -> None:
        await fake.start_async()
        print(f"fake vLLM serving {fake.models} on {fake.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        _run(serve())


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
