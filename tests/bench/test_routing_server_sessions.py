"""Session prompts over real HTTP: the simulated engines cache a session's shared prefix from the
prompt text alone, as vLLM's prefix caching does, so the live bench measures what affinity buys."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from routing.engine import EngineSpec
from routing.server import LiveEngine, build_app
from routing.workload import CHARS_PER_TOKEN, Request, prompt_text, schedule, session_prefix
from swarm_runtime.vllm_metrics import VllmMetrics, parse_vllm_metrics


def test_a_session_turn_names_its_shared_prefix_and_shares_its_text() -> None:
    plan = schedule(rate=20, seconds=10, seed=4, sessions=3)
    first = plan[0]
    again = next(r for r in plan[1:] if r.tag == first.tag)
    other = next(r for r in plan if r.tag != first.tag)
    text, text_again = prompt_text(first), prompt_text(again)
    assert len(text) == first.prompt_tokens * CHARS_PER_TOKEN
    assert session_prefix(text) == (first.tag, first.prefix_tokens)
    shared = first.prefix_tokens * CHARS_PER_TOKEN
    assert text[:shared] == text_again[:shared]  # the same text in every turn, as a router's prefix match sees it
    assert text[shared:] != text_again[shared:]  # each turn's own question
    assert prompt_text(other)[:64] != text[:64]
    plain = schedule(rate=20, seconds=10, seed=4)[0]
    assert session_prefix(prompt_text(plain)) is None  # the default mix shares nothing
    assert session_prefix("sZZ:12 hello") is None and session_prefix("s0000000a:x ") is None


async def _serve_two_turns(cache_tokens: int, first: Request, second: Request) -> tuple[VllmMetrics, list[int]]:
    """Send two session turns one after the other; the server's ``/metrics`` after them, as the router
    parses it, and the engine's cached keys."""
    live = LiveEngine("gpu-test", EngineSpec(prefix_cache_tokens=cache_tokens))
    live.start()
    runner = web.AppRunner(build_app(live), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for req in (first, second):
                body = {"model": "primary", "prompt": prompt_text(req), "max_tokens": 2, "stream": True}
                async with session.post(f"http://127.0.0.1:{port}/v1/completions", json=body) as resp:
                    assert resp.status == 200
                    assert (await resp.read()).endswith(b"data: [DONE]\n\n")
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                metrics = parse_vllm_metrics(await resp.text())
        return metrics, list(live.engine.cached)
    finally:
        await runner.cleanup()
        await live.stop()


def test_the_engine_prefills_a_cached_session_prefix_once() -> None:
    first = Request(0.0, 2300, 2, tag=0xABC, prefix_tokens=2000)
    second = Request(1.0, 2120, 2, tag=0xABC, prefix_tokens=2000)
    metrics, cached = asyncio.run(_serve_two_turns(30_000, first, second))
    assert cached == [0xABC]
    assert metrics.prompt_tokens_total == 2300 + 2120  # vLLM counts every prompt whole...
    assert metrics.prefix_cache_hits_total == 2000  # ...and the second turn's prefix as a cache hit
    assert metrics.prompt_tokens_total - metrics.prefix_cache_hits_total == 2300 + 120  # computed: its question
    metrics, cached = asyncio.run(_serve_two_turns(0, first, second))
    assert cached == [] and metrics.prefix_cache_hits_total == 0  # no prefix caching unless the server is told to
    assert metrics.prompt_tokens_total == 2300 + 2120
