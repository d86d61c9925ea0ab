"""The offered load: open-loop Poisson arrivals of a short/long prompt mix, identical for every router."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .engine import EngineSpec, capacity

__all__ = ["LONG_SHARE", "Request", "combined_capacity", "offered_rate", "prompt_text", "request_size", "schedule"]

LONG_SHARE = 0.25  # a quarter of the prompts are long (RAG context, pasted documents)
CHARS_PER_TOKEN = 4  # the simulated tokenizer: four characters a token, like the router's estimate


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the schedule: when it is sent (seconds from start) and its size."""

    at: float
    prompt_tokens: int
    output_tokens: int
    tag: int


def request_size(rng: random.Random) -> tuple[int, int]:
    """``(prompt tokens, output tokens)``: short chat turns and long-context prompts."""
    prompt = rng.randint(1000, 3000) if rng.random() < LONG_SHARE else rng.randint(40, 250)
    return prompt, rng.randint(16, 48)


def combined_capacity(specs: list[EngineSpec]) -> tuple[float, list[float]]:
    """Total and per-engine saturated throughput (requests/s) for this mix."""
    each = [capacity(spec, request_size) for spec in specs]
    return sum(each), each


def schedule(rate: float, seconds: float, seed: int) -> list[Request]:
    """Poisson arrivals at ``rate`` per second for ``seconds``."""
    rng = random.Random(seed)
    out: list[Request] = []
    t = rng.expovariate(rate)
    while t < seconds:
        prompt, output = request_size(rng)
        out.append(Request(t, prompt, output, rng.getrandbits(32)))
        t += rng.expovariate(rate)
    return out


def offered_rate(slowdowns: list[float], load: float) -> float:
    """Requests/s at ``load`` × the engines' combined first-come-first-served capacity: the same
    offered load for every router, whatever order it makes the engines admit requests in."""
    total, _ = combined_capacity([EngineSpec(slowdown=s) for s in slowdowns])
    return load * total


def prompt_text(req: Request) -> str:
    """A prompt of ``prompt_tokens`` tokens under the simulated tokenizer; distinct per request."""
    head = f"q{req.tag:08x} "
    body = "lorem ipsum dolor sit amet " * (req.prompt_tokens * CHARS_PER_TOKEN // 27 + 1)
    return (head + body)[: req.prompt_tokens * CHARS_PER_TOKEN]
