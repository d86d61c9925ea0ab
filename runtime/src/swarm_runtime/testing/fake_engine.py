"""Pieces of the fake vLLM engine: token pacing, admission, request parsing, error bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
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


class CapacityGate:
    """First-come first-served admission below a capacity that can change at any moment
    (``LatencyModel.capacity_fn``: the KV cache holds fewer long sequences than short ones)."""

    _RECHECK_S = 0.02  # the capacity can grow without a release; look again this often

    def __init__(self) -> None:
        self._queue: deque[object] = deque()
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:  # a restarted fake runs a new loop
            self._cond, self._loop = asyncio.Condition(), loop
        return self._cond

    async def acquire(self, fake: FakeVllm) -> None:
        """Wait for a turn and a free sequence, then count this request as running."""
        me = object()
        self._queue.append(me)
        cond = self._condition()
        try:
            async with cond:
                while self._queue[0] is not me or fake.running >= fake.latency.capacity():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cond.wait(), self._RECHECK_S)
                self._queue.popleft()
                fake.running += 1  # under the lock, so the next in line sees it
                cond.notify_all()  # the next in line may fit too
        finally:
            with contextlib.suppress(ValueError):
                self._queue.remove(me)

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            cond.notify_all()


class Slot:
    """Admission to the fake engine: beyond ``max_num_seqs`` (or the KV capacity) a request waits."""

    def __init__(self, fake: FakeVllm) -> None:
        self.fake = fake

    async def __aenter__(self) -> None:
        fake = self.fake
        if fake.latency.capacity_fn is not None:
            fake.waiting += 1
            try:
                await fake._gate.acquire(fake)  # counts the request as running
            finally:
                fake.waiting -= 1
            return
        if fake._slots is not None:
            fake.waiting += 1
            try:
                await fake._slots.acquire()
            finally:
                fake.waiting -= 1
        fake.running += 1

    async def __aexit__(self, *exc: object) -> None:
        fake = self.fake
        fake.running -= 1
        if fake.latency.capacity_fn is not None:
            await fake._gate.release()
        elif fake._slots is not None:
            fake._slots.release()


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
