"""The fake vLLM's KV-capacity knee, which the autotuner bench relies on."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel


def gauge(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def test_requests_beyond_the_kv_capacity_wait_in_order_and_capacity_can_change() -> None:
    capacity = [2]
    fake = FakeVllm(["m"], latency=LatencyModel(ttft_s=0.0, per_token_s=0.05, tokens=6,
                                                 capacity_fn=lambda: capacity[0])).start()

    async def scenario() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
        async with aiohttp.ClientSession() as s:
            async def one() -> None:
                async with s.post(fake.url + "/v1/chat/completions", json=body) as resp:
                    await resp.read()

            async def metrics() -> str:
                async with s.get(fake.url + "/metrics") as resp:
                    return await resp.text()

            tasks = [asyncio.create_task(one()) for _ in range(5)]
            await asyncio.sleep(0.1)
            text = await metrics()
            assert gauge(text, "vllm:num_requests_running") == 2
            assert gauge(text, "vllm:num_requests_waiting") == 3
            assert gauge(text, "vllm:kv_cache_usage_perc") == 1.0
            capacity[0] = 8  # shorter prompts: more sequences fit
            await asyncio.sleep(0.1)
            text = await metrics()
            assert gauge(text, "vllm:num_requests_running") == 5
            assert gauge(text, "vllm:num_requests_waiting") == 0
            assert gauge(text, "vllm:kv_cache_usage_perc") == 5 / 8
            await asyncio.wait_for(asyncio.gather(*tasks), 5)

    try:
        asyncio.run(scenario())
    finally:
        fake.stop()
    assert fake.requests_served == 5


def test_a_time_compressed_fake_keeps_vllm_histogram_resolution() -> None:
    text = FakeVllm(["m"], time_scale=5).metrics_text()
    bounds = re.findall(r'vllm:time_to_first_token_seconds_bucket\{le="([^"]+)"', text)
    plain = re.findall(r'vllm:time_to_first_token_seconds_bucket\{le="([^"]+)"', FakeVllm(["m"]).metrics_text())
    assert [float(b) for b in bounds[:-1]] == [pytest.approx(float(b) / 5) for b in plain[:-1]]
    assert bounds[-1] == plain[-1] == "+Inf"
