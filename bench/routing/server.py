"""Simulated vLLM servers over real HTTP: the engine model driven in real time, tokens streamed one by one.

    python -m routing.server --engine 8001:1.0 --engine 8002:2.5 [--prefix-cache 30000]   (from bench/)

Serves ``POST /v1/completions`` and ``/v1/chat/completions`` (SSE when ``stream``), ``GET
/health``, ``/v1/models`` and ``/metrics`` with vLLM's metric names. Every event carries
``system_fingerprint`` = the engine's name, so a client can tell which GPU answered whatever
router sits in between. Steps are paced to absolute deadlines, so host-CPU lag does not
stretch a step (a GPU does not slow down because the host is busy). With ``--prefix-cache``,
the engines cache the shared prefixes of session turns (``workload.prompt_text`` names them at
the start of the prompt) as vLLM's prefix caching would: a turn whose session prefix the engine
computed recently prefills only its own question.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .engine import Engine, EngineSpec, Seq
from .workload import CHARS_PER_TOKEN, session_prefix

__all__ = ["LiveEngine", "build_app", "main"]

MODEL = "primary"
_MAX_LAG_S = 0.02  # beyond this behind schedule, the step clock resynchronises instead of bursting


class LiveEngine:
    """An :class:`Engine` stepping in real time on the running event loop."""

    def __init__(self, name: str, spec: EngineSpec) -> None:
        self.name = name
        self.engine = Engine(spec)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def submit(self, seq: Seq) -> None:
        self.engine.add(seq)
        self.wake.set()

    def abort(self, seq: Seq) -> None:
        engine = self.engine
        if seq in engine.waiting:
            engine.waiting.remove(seq)
        elif seq in engine.running:
            seq.output_tokens = seq.emitted + 1  # leaves at the end of the current step
            seq.on_token = None

    async def _run(self) -> None:
        engine = self.engine
        due = time.perf_counter()
        while True:
            if not engine.busy():
                self.wake.clear()
                await self.wake.wait()
                due = time.perf_counter()
            due += engine.plan()
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > _MAX_LAG_S:
                due = now
            engine.finish()


def _texts(body: dict[str, Any]) -> list[str]:
    """What the model reads: the ``prompt``, or the text contents of the ``messages``."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    messages = body.get("messages")
    if isinstance(messages, list):
        return [c for m in messages if isinstance(m, dict) and isinstance(c := m.get("content", ""), str)]
    return []


def _seq(body: dict[str, Any], on_token: Callable[[int, bool], None]) -> Seq:
    """The engine's sequence for a request body: its prompt size, output cap and session prefix."""
    texts = _texts(body)
    out = body.get("max_tokens") or body.get("max_completion_tokens") or 16
    shared = session_prefix(texts[0]) if texts else None
    prefix, prefix_tokens = shared if shared else (None, 0)
    return Seq(max(1, sum(map(len, texts)) // CHARS_PER_TOKEN), int(out), prefix=prefix,
               prefix_tokens=prefix_tokens, on_token=on_token)


def build_app(live: LiveEngine) -> web.Application:
    """The HTTP face of one simulated engine."""
    counter = iter(range(1 << 62))

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat = request.path.endswith("/chat/completions")
        tokens: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
        seq = _seq(body, lambda i, last: tokens.put_nowait((i, last)))
        rid = f"cmpl-{live.name}-{next(counter)}"
        live.submit(seq)
        try:
            if not body.get("stream"):
                text = []
                while True:
                    i, last = await tokens.get()
                    text.append(f" t{i}")
                    if last:
                        break
                choice: dict[str, Any] = ({"message": {"role": "assistant", "content": "".join(text)}} if chat
                                          else {"text": "".join(text)})
                return web.json_response({"id": rid, "object": "chat.completion" if chat else "text_completion",
                                          "model": MODEL, "system_fingerprint": live.name,
                                          "choices": [{"index": 0, **choice, "finish_reason": "length"}]})
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            kind = "chat.completion.chunk" if chat else "text_completion"
            while True:
                i, last = await tokens.get()
                piece: dict[str, Any] = {"delta": {"content": f" t{i}"}} if chat else {"text": f" t{i}"}
                event = {"id": rid, "object": kind, "model": MODEL, "system_fingerprint": live.name,
                         "choices": [{"index": 0, **piece, "finish_reason": "length" if last else None}]}
                await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                if last:
                    break
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        finally:
            if seq.emitted < seq.output_tokens:
                live.abort(seq)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "sim"}]})

    async def metrics(request: web.Request) -> web.Response:
        e = live.engine
        labels = f'model_name="{MODEL}",engine="0"'
        lines = [
            f"vllm:num_requests_running{{{labels}}} {len(e.running)}",
            f"vllm:num_requests_waiting{{{labels}}} {len(e.waiting)}",
            f"vllm:kv_cache_usage_perc{{{labels}}} {len(e.running) / e.spec.max_num_seqs}",
            f"vllm:prompt_tokens_total{{{labels}}} {float(e.prompt_tokens_total)}",
            f"vllm:generation_tokens_total{{{labels}}} {float(e.generation_tokens_total)}",
            f"vllm:prefix_cache_queries_total{{{labels}}} {float(e.prefix_cache_queries_total)}",
            f"vllm:prefix_cache_hits_total{{{labels}}} {float(e.prefix_cache_hits_total)}",
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app = web.Application(client_max_size=16 << 20)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(engines: list[tuple[int, float]], prefix_cache_tokens: int = 0) -> None:
    runners: list[web.AppRunner] = []
    lives: list[LiveEngine] = []
    try:
        for port, slowdown in engines:
            spec = EngineSpec(slowdown=slowdown, prefix_cache_tokens=prefix_cache_tokens)
            live = LiveEngine(f"gpu{port}-x{slowdown:g}", spec)
            live.start()
            lives.append(live)
            runner = web.AppRunner(build_app(live), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()
        for live in lives:
            await live.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated continuous-batching vLLM servers")
    parser.add_argument("--engine", action="append", required=True, metavar="PORT:SLOWDOWN")
    parser.add_argument("--prefix-cache", type=int, default=0, metavar="TOKENS",
                        help="session prefix tokens each engine keeps cached (0: no prefix caching)")
    args = parser.parse_args()
    if args.prefix_cache < 0:
        parser.error("--prefix-cache must be at least 0")
    engines = [(int(p), float(s)) for p, s in (e.split(":") for e in args.engine)]
    try:
        import uvloop

        uvloop.run(serve(engines, args.prefix_cache))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
