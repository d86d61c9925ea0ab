"""The offered load: open-loop Poisson arrivals of a short/long prompt mix, identical for every router."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .engine import EngineSpec, capacity

__all__ = ["LONG_SHARE", "SESSION_CACHE_TOKENS", "Request", "combined_capacity", "offered_rate", "prompt_text",
           "request_size", "schedule", "session_prefix", "session_size"]

LONG_SHARE = 0.25  # a quarter of the prompts are long (RAG context, pasted documents)
CHARS_PER_TOKEN = 4  # the simulated tokenizer: four characters a token, like the router's estimate
SESSION_PREFIX = (1000, 3000)  # tokens every turn of a session shares (``--sessions``)
SESSION_QUESTION = (40, 250)  # tokens of the turn's own question
SESSION_CACHE_TOKENS = 30_000  # prefix tokens each engine caches in ``--sessions`` runs (30 sessions' ~60,000: not all)
_FILLER = "lorem ipsum dolor sit amet "


@dataclass(frozen=True, slots=True)
class Request:
    """One request of the schedule: when it is sent (seconds from start) and its size."""

    at: float
    prompt_tokens: int
    output_tokens: int
    tag: int  # distinct per request; with sessions, the session's key (its shared prefix)
    prefix_tokens: int = 0  # how many of the prompt's tokens the session shares (0: none)


def request_size(rng: random.Random) -> tuple[int, int]:
    """``(prompt tokens, output tokens)``: short chat turns and long-context prompts."""
    prompt = rng.randint(1000, 3000) if rng.random() < LONG_SHARE else rng.randint(40, 250)
    return prompt, rng.randint(16, 48)


def session_size(rng: random.Random) -> tuple[int, int]:
    """``(prompt tokens, output tokens)`` of a turn in a session: a shared prefix (a long system
    prompt or a document under discussion) plus a short question."""
    return rng.randint(*SESSION_PREFIX) + rng.randint(*SESSION_QUESTION), rng.randint(16, 48)


def combined_capacity(specs: list[EngineSpec], sessions: int = 0) -> tuple[float, list[float]]:
    """Total and per-engine saturated throughput (requests/s) for this mix (with ``sessions``, the
    session mix computed in full, as without a prefix cache)."""
    each = [capacity(spec, session_size if sessions else request_size) for spec in specs]
    return sum(each), each


def schedule(rate: float, seconds: float, seed: int, sessions: int = 0) -> list[Request]:
    """Poisson arrivals at ``rate`` per second for ``seconds``; with ``sessions``, each request is a
    turn of one of that many sessions (chosen uniformly), sharing its session's prefix."""
    rng = random.Random(seed)
    prefixes = [(rng.getrandbits(32), rng.randint(*SESSION_PREFIX)) for _ in range(sessions)]
    out: list[Request] = []
    t = rng.expovariate(rate)
    while t < seconds:
        if prefixes:
            key, prefix = rng.choice(prefixes)
            out.append(Request(t, prefix + rng.randint(*SESSION_QUESTION), rng.randint(16, 48), key, prefix))
        else:
            prompt, output = request_size(rng)
            out.append(Request(t, prompt, output, rng.getrandbits(32)))
        t += rng.expovariate(rate)
    return out


def offered_rate(slowdowns: list[float], load: float, sessions: int = 0) -> float:
    """Requests/s at ``load`` × the engines' combined first-come-first-served capacity: the same
    offered load for every router, whatever order it makes the engines admit requests in (with
    ``sessions``: their capacity without a prefix cache)."""
    total, _ = combined_capacity([EngineSpec(slowdown=s) for s in slowdowns], sessions)
    return load * total


def _filled(head: str, tokens: int) -> str:
    """``head`` padded with filler to ``tokens`` tokens under the simulated tokenizer."""
    chars = tokens * CHARS_PER_TOKEN
    return (head + _FILLER * (chars // len(_FILLER) + 1))[:chars]


def prompt_text(req: Request) -> str:
    """A prompt of ``prompt_tokens`` tokens under the simulated tokenizer, distinct per request.
    A session's turn starts with the session's shared prefix, the same text in every turn, which
    names the session and its length so the simulated engine can cache it (:func:`session_prefix`)."""
    if not req.prefix_tokens:
        return _filled(f"q{req.tag:08x} ", req.prompt_tokens)
    shared = _filled(f"s{req.tag:08x}:{req.prefix_tokens} ", req.prefix_tokens)
    return shared + _filled(f"q{req.at:.6f} ", req.prompt_tokens - req.prefix_tokens)


def session_prefix(text: str) -> tuple[int, int] | None:
    """``(session key, prefix tokens)`` named at the start of a session turn's prompt, else None."""
    if not text.startswith("s"):
        return None
    head, _, _ = text[1:32].partition(" ")
    key, _, tokens = head.partition(":")
    try:
        return int(key, 16), int(tokens)
    except ValueError:
        return None
