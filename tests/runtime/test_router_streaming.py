"""Relay fidelity and routing choices over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from swarm_runtime.router.estimator import DEFAULT_OUTPUT_TOKENS, SERVICE_ALPHA
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from .conftest import AUTH, RouterServer, chat, router_config, wait_until_scraped

CREATED = re.compile(rb'"created": \d+')


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", chat(stream=True, max_tokens=12)),
    ("/v1/completions", {"model": "primary", "prompt": "p", "stream": True, "max_tokens": 12}),
    ("/v1/chat/completions", chat(max_tokens=12)),
])
def test_relay_is_byte_exact(fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer],
                             client: httpx.Client, path: str, body: dict[str, object]) -> None:
    fake = fake_factory(latency=LatencyModel(per_token_s=0.002))
    router = router_factory(router_config([fake]))
    direct = client.post(fake.url + path, json=body)
    routed = client.post(router.url + path, json=body, headers=AUTH)
    assert routed.status_code == direct.status_code == 200
    assert routed.headers["content-type"] == direct.headers["content-type"]
    assert CREATED.sub(b"", routed.content) == CREATED.sub(b"", direct.content)
    if body.get("stream"):
        assert routed.content.endswith(b"data: [DONE]\n\n") and routed.content.count(b"data: ") == 13


def test_stream_chunks_arrive_progressively(fake_factory: Callable[..., FakeVllm],
                                            router_factory: Callable[..., RouterServer],
                                            client: httpx.Client) -> None:
    fake = fake_factory(latency=LatencyModel(per_token_s=0.05, tokens=6))
    router = router_factory(router_config([fake]))
    with client.stream("POST", router.url + "/v1/completions", headers=AUTH,
                       json={"model": "primary", "prompt": "p", "stream": True}) as resp:
        chunks = resp.iter_raw()
        first = next(chunks)
        assert first.startswith(b"data: {") and b"tok0" in first and b"tok5" not in first
        rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")


def test_load_aware_routing_avoids_a_backend_with_a_vllm_queue(
        fake_factory: Callable[..., FakeVllm], router_factory: Callable[..., RouterServer],
        client: httpx.Client) -> None:
    busy, idle = fake_factory(metrics_style="old"), fake_factory()
    busy.set_metrics_override(waiting=40, kv_cache_usage=0.95)
    router = router_factory(router_config([busy, idle]))
    wait_until_scraped(router, "b0", lambda b: b.waiting == 40 and b.kv_usage == 0.95)
    backends = Counter(client.post(router.url + "/v1/completions", headers=AUTH,
                                   json={"model": "primary", "prompt": f"p{i}"}).headers["x-swarm-backend"]
                       for i in range(10))
    assert backends == Counter({"b1": 10})


def test_session_affinity_keeps_a_user_on_one_backend(fake_factory: Callable[..., FakeVllm],
                                                      router_factory: Callable[..., RouterServer],
                                                      client: httpx.Client) -> None:
    fakes = [fake_factory() for _ in range(3)]
    router = router_factory(router_config(fakes))
    by_user = {}
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
        seen = {client.post(router.url + "/v1/chat/completions", headers=AUTH,
                            json=chat(content=f"q{i}", user=user)).headers["x-swarm-backend"] for i in range(4)}
        assert len(seen) == 1
        by_user[user] = seen.pop()
    assert len(set(by_user.values())) >= 2


def test_prefix_affinity_and_spill_under_load(fake_factory: Callable[..., FakeVllm],
                                              router_factory: Callable[..., RouterServer]) -> None:
    fakes = [fake_factory(latency=LatencyModel(ttft_s=0.3, tokens=1)) for _ in range(2)]
    router = router_factory(router_config(fakes))
    system = "You are a careful assistant. " * 20

    async def burst(n: int) -> list[str]:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as c:
            rs = await asyncio.gather(*[c.post(router.url + "/v1/chat/completions", headers=AUTH, json={
                "model": "primary", "messages": [{"role": "system", "content": system},
                                                 {"role": "user", "content": f"question {i}"}]})
                for i in range(n)])
        return [r.headers["x-swarm-backend"] for r in rs]

    sequential = [asyncio.run(burst(1))[0] for _ in range(3)]
    assert len(set(sequential)) == 1  # same prefix, idle router: always the warm backend
    spread = Counter(asyncio.run(burst(40)))
    assert len(spread) == 2 and min(spread.values()) >= 5  # a burst spills over to the other one


@pytest.mark.parametrize("affinity", [{}, {"enabled": False}, {"cache_tokens": 0}])
def test_the_router_remembers_which_prompt_blocks_it_sent_where(fake_factory: Callable[..., FakeVllm],
                                                                router_factory: Callable[..., RouterServer],
                                                                client: httpx.Client,
                                                                affinity: dict[str, object]) -> None:
    router = router_factory(router_config([fake_factory(), fake_factory()], affinity=affinity))
    system = "You are a careful assistant. " * 40  # 1,160 characters
    body = {"model": "primary", "messages": [{"role": "system", "content": system},
                                             {"role": "user", "content": "What is a monad?"}]}
    served = client.post(router.url + "/v1/chat/completions", headers=AUTH, json=body).headers["x-swarm-backend"]
    prefixes = router.state.pool.warmth.prefixes
    held = router.call(lambda: {name: prefixes.blocks(name) for name in ("b0", "b1")})
    if affinity:  # affinity off, or no prefix cache assumed: nothing is hashed or credited
        assert held == {"b0": 0, "b1": 0}
    else:  # "system:" + the system prompt + newline + "user:" + the question: 1,190 characters, 4 whole blocks
        assert held == {served: 4, ("b1" if served == "b0" else "b0"): 0}


def test_the_router_counts_a_streams_events_as_its_progress(fake_factory: Callable[..., FakeVllm],
                                                          router_factory: Callable[..., RouterServer],
                                                          client: httpx.Client) -> None:
    fake = fake_factory(latency=LatencyModel(per_token_s=0.05, tokens=10))
    router = router_factory(router_config([fake]))
    est = router.state.pool.backends["b0"].est
    seen = b""
    with client.stream("POST", router.url + "/v1/completions", headers=AUTH,
                       json={"model": "primary", "prompt": "p", "stream": True, "max_tokens": 10}) as resp:
        chunks = resp.iter_raw()
        while seen.count(b"\n\n") < 4:
            seen += next(chunks)
        counted = router.call(lambda: [entry.events for entry in est.sent_requests.values()])
        assert len(counted) == 1 and seen.count(b"\n\n") <= counted[0] < 10
        rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n")
    for _ in range(100):  # the router releases the request just after the client's last byte
        if not router.call(lambda: est.sent_requests):
            break
        time.sleep(0.01)
    # 10 tokens generated ([DONE] is not one), folded into the output-length average
    expected = DEFAULT_OUTPUT_TOKENS + SERVICE_ALPHA * (10 - DEFAULT_OUTPUT_TOKENS)
    assert router.call(lambda: est.output_tokens) == pytest.approx(expected)
