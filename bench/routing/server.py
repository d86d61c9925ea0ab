"""Simulated vLLM servers over real HTTP: the engine model driven in real time, tokens streamed one by one.

    python -m routing.server --engine 8001:1.0 --engine 8002:2.5   (from bench/)

Serves ``POST /v1/completions`` and ``/v1/chat/completions`` (SSE when ``stream``), ``GET
/health``, ``/v1/models`` and ``/metrics`` with vLLM's metric names. Every event carries
``system_fingerprint`` = the engine's name, so a client can tell which GPU answered whatever
router sits in between. Steps are paced to absolute deadlines, so host-CPU lag does not
stretch a step (a GPU does not slow down because the host is busy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from .engine import Engine, EngineSpec, Seq
from .workload import CHARS_PER_TOKEN

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


def _prompt_tokens(body: dict[str, Any]) -> int:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return max(1, len(prompt) // CHARS_PER_TOKEN)
    messages = body.get("messages")
    if isinstance(messages, list):
        chars = sum(len(m.get("content", "")) for m in messages if isinstance(m, dict)
                    and isinstance(m.get("content", ""), str))
        return max(1, chars // CHARS_PER_TOKEN)
    return 1


def build_app(live: LiveEngine) -> web.Application:
    """The HTTP face of one simulated engine."""
    counter = iter(range(1 << 62))

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        chat = request.path.endswith("/chat/completions")
        out = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        tokens: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
        seq = Seq(_prompt_tokens(body), int(out), on_token=lambda i, last: tokens.put_nowait((i, last)))
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
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app = web.Application(client_max_size=16 << 20)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(engines: list[tuple[int, float]]) -> None:
    runners: list[web.AppRunner] = []
    lives: list[LiveEngine] = []
    try:
        for port, slowdown in engines:
            live = LiveEngine(f"gpu{port}-x{slowdown:g}", EngineSpec(slowdown=slowdown))
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
    args = parser.parse_args()
    engines = [(int(p), float(s)) for p, s in (e.split(":") for e in args.engine)]
    try:
        import uvloop

        uvloop.run(serve(engines))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
