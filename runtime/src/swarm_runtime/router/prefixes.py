"""Which backend may still cache how much of this prompt: prompt blocks recently sent to each backend.

vLLM's prefix caching keeps the KV blocks of prompts it computed and reuses them for any later
prompt that starts the same way, until it needs the memory (least recently used first). The
router mirrors that in characters: a prompt is cut into blocks of ``block_chars`` and each block
is named by a hash of the prompt up to its end (a chain, as vLLM hashes its KV blocks), so two
prompts share their first k names exactly when they share their first k blocks. Each backend
keeps the names of the blocks sent to it in the last ``ttl_s``, at most ``capacity_blocks`` of
them (least recently sent dropped first, like the engine's own cache). A candidate's cached
prefix is the longest run of this prompt's blocks it holds. :class:`Warmth` joins that memory
with where each session or prefix key last went (``warm.py``): the pool and the offline race
both route through it. No I/O; the clock is injected.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace

from .config import AffinityConfig
from .routing import CHARS_PER_TOKEN, RequestKey
from .warm import WarmPrefixes

__all__ = ["MAX_BLOCKS", "PrefixMemory", "Warmth", "prompt_blocks", "spared_tokens", "warmed"]

MAX_BLOCKS = 512  # blocks hashed per prompt at most (128 K characters at the default 256)


def prompt_blocks(text: str | None, block_chars: int) -> tuple[int, ...]:
    """Chained names of ``text``'s whole blocks: the k-th names the first k + 1 blocks.

    A trailing partial block is left out: the engine caches only whole blocks too.
    """
    if not text or block_chars < 1:
        return ()
    data = text.encode()
    names: list[int] = []
    chained = 0
    for start in range(0, min(len(data), block_chars * MAX_BLOCKS) - block_chars + 1, block_chars):
        chained = zlib.crc32(data[start:start + block_chars], chained)
        names.append(chained)
    return tuple(names)


class PrefixMemory:
    """Per backend, the prompt blocks sent there recently, least recently sent first."""

    def __init__(self, ttl_s: float, capacity_blocks: int, clock: Callable[[], float]) -> None:
        if ttl_s <= 0 or capacity_blocks < 1:
            raise ValueError(f"PrefixMemory needs ttl_s > 0 and capacity_blocks >= 1, "
                             f"got {ttl_s} and {capacity_blocks}")
        self.ttl_s = ttl_s
        self.capacity_blocks = capacity_blocks
        self.clock = clock
        self._sent: dict[str, OrderedDict[tuple[int, int], float]] = {}

    def blocks(self, backend: str) -> int:
        return len(self._sent.get(backend, ()))

    def sent(self, backend: str, blocks: Sequence[int]) -> None:
        """A prompt of these blocks was just sent to ``backend``: it will compute and cache them."""
        if not blocks:
            return
        held = self._sent.setdefault(backend, OrderedDict())
        now = self.clock()
        for index in range(len(blocks) - 1, -1, -1):  # the first block last: a prefix outlives its tails
            held[(index, blocks[index])] = now
            held.move_to_end((index, blocks[index]))
        while len(held) > self.capacity_blocks:
            held.popitem(last=False)

    def cached(self, backend: str, blocks: Sequence[int]) -> int:
        """How many of ``blocks``, from the first, ``backend`` was sent within ``ttl_s``."""
        held = self._sent.get(backend)
        if not held:
            return 0
        oldest = self.clock() - self.ttl_s
        run = 0
        for index, name in enumerate(blocks):
            at = held.get((index, name))
            if at is None or at < oldest:
                break
            run += 1
        return run


def spared_tokens(run: int, key: RequestKey, block_chars: int) -> int:
    """Prompt tokens a cached run of ``run`` blocks spares (never the whole prompt: the engine
    computes at least its last token)."""
    return max(0, min(key.prompt_tokens - 1, run * block_chars // CHARS_PER_TOKEN))


def warmed(key: RequestKey, candidates: Sequence[str], last: str | None, memory: PrefixMemory,
           block_chars: int) -> RequestKey:
    """``key`` with its warm backend among ``candidates`` (names): the one sent the longest run of
    this prompt's blocks recently (ties: ``last``, where the session or prefix last went), with the
    tokens its cache spares; without such a run, ``last`` (sparing nothing)."""
    if key.blocks and candidates:
        run, _, name = max((memory.cached(c, key.blocks), c == last, c) for c in candidates)
        if run > 0:
            return replace(key, warm=name, warm_tokens=spared_tokens(run, key, block_chars))
    return replace(key, warm=last) if last is not None else key


class Warmth:
    """What the router knows of its backends' prefix caches: the prompt blocks it sent each one
    (``prefixes``) and where each session or prefix key last went (``sessions``)."""

    def __init__(self, affinity: AffinityConfig, clock: Callable[[], float]) -> None:
        self.block_chars = affinity.prefix_chars
        self.sessions = WarmPrefixes(affinity.ttl_s, affinity.remember, clock)
        capacity = affinity.cache_tokens * CHARS_PER_TOKEN // affinity.prefix_chars
        self.prefixes = PrefixMemory(affinity.ttl_s, max(1, capacity), clock)

    def warmed(self, key: RequestKey, candidates: Sequence[str]) -> RequestKey:
        """``key`` with its warm backend among ``candidates`` (names) and what its cache spares (:func:`warmed`)."""
        return warmed(key, candidates, self.sessions.where(key.affinity), self.prefixes, self.block_chars)

    def bind(self, key: RequestKey, backend: str) -> int:
        """``key`` was sent to ``backend``: remember it there; the prompt tokens ``backend`` will
        compute (its cache spares the run of the prompt's blocks it was sent before)."""
        if key.affinity is not None:
            self.sessions.sent(key.affinity, backend)
        spared = spared_tokens(self.prefixes.cached(backend, key.blocks), key, self.block_chars)
        self.prefixes.sent(backend, key.blocks)
        return key.prompt_tokens - spared
