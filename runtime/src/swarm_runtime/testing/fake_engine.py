"""Pieces of the fake vLLM engine: token pacing, admission, request parsing, error bodies."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from swarm_runtime.testing.fake_vllm import FakeVllm


@dataclass
class Faults:
    """What the fake will do wrong next (set through FakeVllm's thread-safe controls)."""

    fail_next: int = 0
    fail_status: int = 500
    fail_after_tokens: int | None = None
    fail_mid_stream_next: int = 0
    hang_next: int = 0
    stall_after_tokens: int | None = None
    stall_next: int = 0
    healthy: bool = True
    overrides: dict[str, float] = field(default_factory=dict)


class Pacer:
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


class Slot:
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


def abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"object": "error", "message": message, "type": kind, "param": None,
                              "code": status}, status=status)


def max_tokens(body: dict[str, Any], default: int) -> int:
    value = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096:
        return value
    return max(1, default)


def prompt_len(body: dict[str, Any]) -> int:
    prompt = body.get("prompt") or body.get("messages") or ""
    return max(1, math.ceil(len(json.dumps(prompt)) / 4))


def token(i: int) -> str:
    return f"tok{i}"
