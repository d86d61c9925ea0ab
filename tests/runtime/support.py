"""Small helpers the runtime tests share."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from typing import Any, Self

from aiohttp import web
from swarm_runtime.testing.fake_vllm import drain_and_close


class FakeClock:
    """A monotonic clock the test moves by hand (`clock.t += 5`)."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for servers that cannot bind port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThreadedApp:
    """An aiohttp app served on 127.0.0.1 (a free port) from its own event-loop thread."""

    def __init__(self, app: web.Application, **runner_options: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, **runner_options)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            drain_and_close(self.loop)

    def start(self) -> Self:
        self.thread.start()

        async def setup() -> None:
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = self.runner.addresses[0][1]

        asyncio.run_coroutine_threadsafe(setup(), self.loop).result(10)
        return self

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        # A connection the fake accepted while it shut down (a client racing the stop) can be
        # left half-registered on the closed loop. Collect it now, as this fake's teardown: left
        # to the garbage collector, its ResourceWarning fails whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
