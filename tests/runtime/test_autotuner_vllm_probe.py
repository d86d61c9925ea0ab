"""The vLLM probe over real HTTP against the fake vLLM server (current and deprecated names)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from swarm_runtime.autotuner.vllm_probe import VllmProbe
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from tests.runtime.support import free_port


async def _complete(session: aiohttp.ClientSession, url: str, n: int) -> None:
    async def one() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            await resp.read()
    await asyncio.gather(*(one() for _ in range(n)))


@pytest.mark.parametrize("style", ["new", "old"])
def test_interval_ttft_and_gauges(style: str) -> None:
    fake = FakeVllm(["m"], latency=LatencyModel(ttft_s=0.03, per_token_s=0.001), metrics_style=style).start()

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            probe = VllmProbe(fake.url, session, quantile=0.9)
            first = await probe.read()
            assert first is not None and first.ttft_s is None  # no baseline yet
            await _complete(session, fake.url, 6)
            second = await probe.read()
            assert second is not None
            # All six first tokens land in the (0.02, 0.04] bucket.
            assert second.ttft_s is not None and 0.02 < second.ttft_s <= 0.04
            assert second.preemptions == 0
            fake.set_metrics_override(running=7, waiting=2, kv_cache_usage=0.5, preemptions_total=3)
            third = await probe.read()
            assert third is not None
            assert third.ttft_s is None  # nothing new in this interval
            assert (third.running, third.waiting, third.kv_cache_usage, third.preemptions) == (7, 2, 0.5, 3)
            fourth = await probe.read()
            assert fourth is not None and fourth.preemptions == 0

    try:
        asyncio.run(scenario())
    finally:
        fake.stop()


def test_gauges_between_reads_leave_the_interval_whole() -> None:
    fake = FakeVllm(["m"], latency=LatencyModel(ttft_s=0.03, per_token_s=0.001)).start()

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            probe = VllmProbe(fake.url, session, quantile=0.9)
            await probe.read()
            await _complete(session, fake.url, 6)
            fake.set_metrics_override(running=7, waiting=2, kv_cache_usage=0.97, preemptions_total=3)
            gauges = await probe.read_gauges()
            assert gauges is not None and gauges.ttft_s is None and gauges.preemptions == 0
            assert (gauges.running, gauges.waiting, gauges.kv_cache_usage) == (7, 2, 0.97)
            reading = await probe.read()  # still the whole interval since the last read
            assert reading is not None and reading.ttft_s is not None and 0.02 < reading.ttft_s <= 0.04
            assert reading.preemptions == 3
        fake.stop()
        async with aiohttp.ClientSession() as session:
            assert await VllmProbe(fake.url, session).read_gauges() is None  # unreachable: no reading

    asyncio.run(scenario())


def test_unreachable_reads_none_logs_once_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            probe = VllmProbe(f"http://127.0.0.1:{port}", session, timeout_s=0.5)
            assert await probe.read() is None
            assert await probe.read() is None
            assert not probe.reachable
            fake = FakeVllm(["m"], port=port).start()
            try:
                first = await probe.read()
                assert first is not None and probe.reachable
            finally:
                fake.stop()

    asyncio.run(scenario())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert any("reachable again" in r.getMessage() for r in caplog.records)
