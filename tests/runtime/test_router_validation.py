"""Edge validation: malformed OpenAI bodies get a 400 naming the param and never reach a backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from swarm_runtime.router.validation import CHAT_PATH, COMPLETIONS_PATH, validate
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from .conftest import AUTH, ENV, RouterServer, chat, router_config

CHAT, COMPLETIONS = "chat", "completions"
PATHS = {CHAT: CHAT_PATH, COMPLETIONS: COMPLETIONS_PATH}


def completion(**extra: Any) -> dict[str, Any]:
    return {"model": "primary", "prompt": "hello", **extra}


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "primary", "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}

# (endpoint, body, expected status, expected param)
MALFORMED: list[tuple[str, dict[str, Any], int, str]] = [
    (CHAT, {"model": "primary"}, 400, "messages"),
    (CHAT, msgs(), 400, "messages"),
    (CHAT, {"model": "primary", "messages": "hi"}, 400, "messages"),
    (CHAT, {"model": "primary", "messages": {"role": "user"}}, 400, "messages"),
    (CHAT, msgs("hi"), 400, "messages[0]"),
    (CHAT, msgs({"content": "hi"}), 400, "messages[0].role"),
    (CHAT, msgs({"role": "wizard", "content": "hi"}), 400, "messages[0].role"),
    (CHAT, msgs({"role": 1, "content": "hi"}), 400, "messages[0].role"),
    (CHAT, msgs(USER, {"role": "user", "content": 42}), 400, "messages[1].content"),
    (CHAT, msgs({"role": "user"}), 400, "messages[0].content"),
    (CHAT, msgs({"role": "user", "content": {"text": "hi"}}), 400, "messages[0].content"),
    (CHAT, msgs({"role": "user", "content": ["hi"]}), 400, "messages[0].content[0]"),
    (CHAT, msgs({"role": "user", "content": [{"text": "hi"}]}), 400, "messages[0].content[0].type"),
    (CHAT, msgs({"role": "user", "content": [{"type": "text", "text": 5}]}), 400, "messages[0].content[0].text"),
    (CHAT, msgs(USER, max_completion_tokens=0), 400, "max_completion_tokens"),
    (CHAT, msgs(USER, logprobs=3), 400, "logprobs"),
    (CHAT, msgs(USER, tools={"type": "function"}), 400, "tools"),
    (CHAT, msgs(USER, tools=["get_weather"]), 400, "tools[0]"),
    (CHAT, msgs(USER, tools=[{"type": "function"}]), 400, "tools[0].function"),
    (CHAT, msgs(USER, tools=[{"type": "function", "function": {"name": 3}}]), 400, "tools[0].function.name"),
    (CHAT, msgs(USER, tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]), 400,
     "tools[0].function.parameters"),
    (CHAT, chat(max_tokens="16"), 400, "max_tokens"),
    (CHAT, chat(max_tokens=0), 400, "max_tokens"),
    (CHAT, chat(max_tokens=True), 400, "max_tokens"),
    (CHAT, chat(max_tokens=1.5), 400, "max_tokens"),
    (CHAT, chat(n=0), 400, "n"),
    (CHAT, chat(n="2"), 400, "n"),
    (CHAT, chat(temperature=-0.1), 400, "temperature"),
    (CHAT, chat(temperature="hot"), 400, "temperature"),
    (CHAT, chat(top_p=0), 400, "top_p"),
    (CHAT, chat(top_p=1.5), 400, "top_p"),
    (CHAT, chat(presence_penalty=3), 400, "presence_penalty"),
    (CHAT, chat(stream="yes"), 400, "stream"),
    (CHAT, chat(stream=1), 400, "stream"),
    (CHAT, chat(stream=True, stream_options=True), 400, "stream_options"),
    (CHAT, chat(stream=True, stream_options={"include_usage": "yes"}), 400, "stream_options.include_usage"),
    (CHAT, chat(stream_options={"include_usage": True}), 400, "stream_options"),
    (CHAT, chat(stop=7), 400, "stop"),
    (CHAT, chat(stop=["\n", 7]), 400, "stop[1]"),
    (CHAT, chat(user=123), 400, "user"),
    (COMPLETIONS, {"model": "primary"}, 400, "prompt"),
    (COMPLETIONS, completion(prompt=7), 400, "prompt"),
    (COMPLETIONS, completion(prompt=None), 400, "prompt"),
    (COMPLETIONS, completion(prompt=[]), 400, "prompt"),
    (COMPLETIONS, completion(prompt={"text": "hi"}), 400, "prompt"),
    (COMPLETIONS, completion(prompt=["a", 1]), 400, "prompt[1]"),
    (COMPLETIONS, completion(prompt=[1, -2]), 400, "prompt[1]"),
    (COMPLETIONS, completion(prompt=[1, "a"]), 400, "prompt[1]"),
    (COMPLETIONS, completion(prompt=[[1, 2], []]), 400, "prompt[1]"),
    (COMPLETIONS, completion(prompt=[1.5]), 400, "prompt[0]"),
    (COMPLETIONS, completion(max_tokens=-1), 400, "max_tokens"),
    (COMPLETIONS, completion(logprobs=True), 400, "logprobs"),
    (COMPLETIONS, completion(echo="no"), 400, "echo"),
]

VALID: list[tuple[str, dict[str, Any]]] = [
    (CHAT, chat()),
    (CHAT, msgs({"role": "system", "content": "be brief"}, {"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]})),
    (CHAT, msgs(USER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "17",
                                                                   "tool_call_id": "c1"})),
    (CHAT, chat(max_tokens=None, temperature=0, top_p=1, n=2, stop=["\n"], user="alice", seed=3,
                stream=True, stream_options={"include_usage": True}, logprobs=True, top_logprobs=2,
                tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])),
    (CHAT, chat(temperature=3.5, top_k=20, min_p=0.1, guided_json={"type": "object"}, repetition_penalty=1.1)),
    (COMPLETIONS, completion()),
    (COMPLETIONS, completion(prompt=["a", "b"], stop="\n", max_tokens=8, echo=False, logprobs=2)),
    (COMPLETIONS, completion(prompt=[1, 2, 3])),
    (COMPLETIONS, completion(prompt=[[1, 2], [3]])),
    (COMPLETIONS, completion(echo=True, max_tokens=0, logprobs=1)),
    (COMPLETIONS, {"model": "primary", "prompt_embeds": "base64..."}),
]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeVllm, RouterServer]]:
    fake = FakeVllm(latency=LatencyModel(ttft_s=0.0, per_token_s=0.0, tokens=2)).start()
    router = RouterServer(router_config([fake]), ENV).start()
    try:
        yield fake, router
    finally:
        router.stop()
        fake.stop()


def test_the_table_is_big_enough() -> None:
    assert len(MALFORMED) >= 25
    assert {kind for kind, *_ in MALFORMED} == {CHAT, COMPLETIONS}


@pytest.mark.parametrize(("endpoint", "body", "status", "param"), MALFORMED)
def test_malformed_body_is_refused_at_the_edge(served: tuple[FakeVllm, RouterServer], endpoint: str,
                                               body: dict[str, Any], status: int, param: str) -> None:
    fake, router = served
    received = fake.requests_received
    with httpx.Client(timeout=10, trust_env=False) as client:
        resp = client.post(router.url + PATHS[endpoint], json=body, headers=AUTH)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert param.split("[")[0].split(".")[0] in error["message"]
    assert fake.requests_received == received  # no backend was contacted
    breaker = router.state.pool.backends["b0"].breaker
    assert router.call(lambda: (breaker.state.value, breaker.trips)) == ("closed", 0)


@pytest.mark.parametrize(("endpoint", "body"), VALID)
def test_valid_bodies_and_unknown_fields_pass_through(served: tuple[FakeVllm, RouterServer], endpoint: str,
                                                      body: dict[str, Any]) -> None:
    assert validate(PATHS[endpoint], body) is None
    if "prompt_embeds" in body:
        return  # the fake does not implement embeddings input
    fake, router = served
    with httpx.Client(timeout=10, trust_env=False) as client:
        resp = client.post(router.url + PATHS[endpoint], json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert fake.last_request == body  # forwarded unchanged, extension fields included


def test_refusals_move_no_retry_or_breaker_counter(served: tuple[FakeVllm, RouterServer]) -> None:
    _, router = served
    with httpx.Client(timeout=10, trust_env=False) as client:
        for _ in range(3):
            client.post(router.url + CHAT_PATH, json=chat(temperature="x"), headers=AUTH)
        text = client.get(router.url + "/metrics").text
    assert 'swarm_router_retries_total{backend="b0"} 0.0' in text
    assert 'swarm_router_requests_total{backend="none",status="400"}' in text
    assert router.call(lambda: router.state.pool.backends["b0"].breaker.refused_trips) == 0
