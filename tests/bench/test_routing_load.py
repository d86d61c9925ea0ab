"""The bench's client says why requests failed, so a failed run can be diagnosed after the fact."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.load import Result, replay
from routing.report import summarize
from routing.workload import Request


async def _against_a_failing_router(plan: list[Request]) -> tuple[list[Result], list[Result]]:
    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text="no backend")

    app = web.Application()
    app.router.add_post("/v1/completions", unavailable)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        refused = socket.socket()
        refused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        closed_port = refused.getsockname()[1]
        try:
            return (await replay(f"http://127.0.0.1:{port}", plan),
                    await replay(f"http://127.0.0.1:{closed_port}", plan))
        finally:
            refused.close()
    finally:
        await runner.cleanup()


def test_failed_requests_carry_their_reason_into_the_summary() -> None:
    plan = [Request(0.01 * i, 100, 4, tag=i) for i in range(3)]
    rejected, refused = asyncio.run(_against_a_failing_router(plan))
    assert [r.error for r in rejected] == ["HTTP 503"] * 3 and not any(r.ok for r in rejected)
    assert all(r.error == "ClientConnectorError" and not r.ok for r in refused)
    summary = summarize([*rejected, Result(0.5, 100, 0.1, 0.2, "gpu-x1", True)], "-x2.5", 0.0, 1.0)
    assert (summary.errors, summary.failures) == (3, "HTTP 503 x3")
    assert summarize([Result(0.5, 100, 0.1, 0.2, "gpu-x1", True)], "-x2.5", 0.0, 1.0).failures == ""
