"""Cached prompt prefixes (``router/prefixes.py``): which backend may spare how much of a prompt."""

from __future__ import annotations

import pytest
from swarm_runtime.router.prefixes import MAX_BLOCKS, PrefixMemory, prompt_blocks, spared_tokens, warmed
from swarm_runtime.router.routing import RequestKey

from tests.runtime.support import FakeClock

SYSTEM = "You are a careful assistant. " * 40  # 1,160 characters: 4 whole blocks of 256


def test_prompts_that_start_alike_share_their_first_block_names_and_no_later_ones() -> None:
    a = prompt_blocks(SYSTEM + "What is a monad?" * 20, 256)
    b = prompt_blocks(SYSTEM + "Explain the CAP theorem." * 20, 256)
    assert len(a) == (len(SYSTEM) + 16 * 20) // 256  # whole blocks only
    assert a[:4] == b[:4] and a[4] != b[4]
    assert a[5:] != b[5:] and set(a[5:]).isdisjoint(b[5:])  # a name stands for everything before it
    assert prompt_blocks("x" + SYSTEM, 256)[0] != a[0]
    assert prompt_blocks("short", 256) == () and prompt_blocks(None, 256) == () and prompt_blocks("", 256) == ()
    assert len(prompt_blocks("y" * 256 * (MAX_BLOCKS + 10), 256)) == MAX_BLOCKS


def test_a_backend_holds_the_longest_run_it_was_sent_recently() -> None:
    clock = FakeClock()
    memory = PrefixMemory(ttl_s=60, capacity_blocks=100, clock=clock)
    first = prompt_blocks(SYSTEM + "q1 " * 200, 256)
    second = prompt_blocks(SYSTEM + "q2 " * 200, 256)
    memory.sent("a", first)
    assert memory.cached("a", first) == len(first)
    assert memory.cached("a", second) == 4  # the shared system prompt
    assert memory.cached("b", second) == 0
    clock.t = 61
    assert memory.cached("a", second) == 0  # past ttl_s: assumed evicted


def test_a_full_backend_forgets_the_tails_of_prompts_before_their_prefixes() -> None:
    memory = PrefixMemory(ttl_s=60, capacity_blocks=6, clock=FakeClock())
    first = prompt_blocks(SYSTEM + "q1 " * 200, 256)  # 6 blocks
    memory.sent("a", first)
    memory.sent("a", prompt_blocks("other " * 100, 256)[:2])  # 2 more: 2 of the first prompt's must go
    assert memory.blocks("a") == 6
    assert memory.cached("a", first) == 4  # its last two went, its prefix stayed


def test_the_warm_backend_is_the_one_with_the_longest_cached_run() -> None:
    memory = PrefixMemory(ttl_s=60, capacity_blocks=100, clock=FakeClock())
    prompt = prompt_blocks(SYSTEM + "q " * 300, 256)
    memory.sent("a", prompt[:4])
    memory.sent("b", prompt[:6])
    key = RequestKey(1, 1, prompt_tokens=450, max_tokens=32, blocks=prompt)
    warm = warmed(key, ["a", "b"], last="a", memory=memory, block_chars=256)
    assert (warm.warm, warm.warm_tokens) == ("b", 6 * 64)
    assert warmed(key, ["a"], last=None, memory=memory, block_chars=256).warm == "a"  # b is no candidate
    memory.sent("a", prompt[:6])
    assert warmed(key, ["a", "b"], last="a", memory=memory, block_chars=256).warm == "a"  # tie: where it last went
    cold = RequestKey(2, 2, prompt_tokens=450, max_tokens=32, blocks=prompt_blocks("new " * 300, 256))
    sticky = warmed(cold, ["a", "b"], last="b", memory=memory, block_chars=256)
    assert (sticky.warm, sticky.warm_tokens) == ("b", 0)  # nothing cached: where it last went, sparing nothing
    assert warmed(cold, ["a", "b"], last=None, memory=memory, block_chars=256) == cold


def test_a_cache_never_spares_the_whole_prompt() -> None:
    key = RequestKey(None, 1, prompt_tokens=100, max_tokens=8)
    assert spared_tokens(1, key, 256) == 64
    assert spared_tokens(5, key, 256) == 99  # the last token is always computed
    assert spared_tokens(0, key, 256) == 0


@pytest.mark.parametrize(("ttl_s", "capacity"), [(0, 10), (60, 0)])
def test_bad_bounds_are_refused(ttl_s: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="ttl_s > 0 and capacity_blocks >= 1"):
        PrefixMemory(ttl_s, capacity, FakeClock())
