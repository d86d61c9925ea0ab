"""Admission: caps, the bounded wait queue, deadlines and run-time cap changes."""

from __future__ import annotations

import asyncio
import math

import pytest
from swarm_runtime.router.config import AffinityConfig, BackendConfig, BreakerConfig, LateBindingConfig
from swarm_runtime.router.pool import NoBackend, Pool, QueueFull, QueueTimeout
from swarm_runtime.router.prefixes import prompt_blocks
from swarm_runtime.router.routing import make_load_strategy, rendezvous_rank


def pool(limits: dict[str, int], queue_max: int = 4) -> Pool:
    configs = [BackendConfig(name=n, url="http://127.0.0.1:1", models=["m"], max_concurrency=lim)
               for n, lim in limits.items()]
    return Pool(configs, BreakerConfig(), make_load_strategy(2), queue_max)


def test_slots_fill_then_queue_then_hand_off_in_fifo_order() -> None:
    async def scenario() -> list[str]:
        p = pool({"a": 1, "b": 1})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2
        first = await p.acquire("m", p.key(None), deadline)
        second = await p.acquire("m", p.key(None), deadline)
        assert {first.name, second.name} == {"a", "b"}
        order: list[str] = []

        async def wait(tag: str) -> None:
            backend = await p.acquire("m", p.key(None), deadline)
            order.append(tag)
            p.release(backend)

        tasks = [asyncio.create_task(wait(t)) for t in ("x", "y")]
        await asyncio.sleep(0.01)
        assert p.queue_depth() == 2 and order == []
        p.release(first)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["x", "y"]


def test_queue_full_and_deadline() -> None:
    async def scenario() -> None:
        p = pool({"a": 1}, queue_max=1)
        loop = asyncio.get_running_loop()
        held = await p.acquire("m", p.key(None), loop.time() + 1)
        waiter = asyncio.create_task(p.acquire("m", p.key(None), loop.time() + 0.05))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await p.acquire("m", p.key(None), loop.time() + 1)
        with pytest.raises(QueueTimeout):
            await waiter
        assert p.queue_depth() == 0 and held.in_flight == 1

    asyncio.run(scenario())


def test_raising_the_limit_releases_waiters_at_once() -> None:
    async def scenario() -> None:
        p = pool({"a": 1})
        loop = asyncio.get_running_loop()
        await p.acquire("m", p.key(None), loop.time() + 1)
        waiters = [asyncio.create_task(p.acquire("m", p.key(None), loop.time() + 1)) for _ in range(2)]
        await asyncio.sleep(0)
        p.set_limit("a", 3)
        done = await asyncio.wait_for(asyncio.gather(*waiters), 0.5)
        assert [b.name for b in done] == ["a", "a"] and p.backends["a"].in_flight == 3
        p.set_limit("a", 1)  # lowering never revokes running requests
        assert p.backends["a"].in_flight == 3

    asyncio.run(scenario())


def test_cancelled_waiter_does_not_leak_a_handed_slot() -> None:
    async def scenario() -> None:
        p = pool({"a": 1})
        loop = asyncio.get_running_loop()
        held = await p.acquire("m", p.key(None), loop.time() + 1)
        waiter = asyncio.create_task(p.acquire("m", p.key(None), loop.time() + 1))
        await asyncio.sleep(0)
        p.release(held)  # hands the slot to the waiter...
        waiter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert p.backends["a"].in_flight == 0

    asyncio.run(scenario())


def test_no_backend_for_unhealthy_or_excluded() -> None:
    async def scenario() -> None:
        p = pool({"a": 1, "b": 1})
        deadline = asyncio.get_running_loop().time() + 1
        p.backends["a"].healthy = False
        with pytest.raises(NoBackend):
            await p.acquire("m", p.key(None), deadline, exclude=frozenset({"b"}))
        assert (await p.acquire("m", p.key(None), deadline)).name == "b"

    asyncio.run(scenario())


def test_half_open_backend_with_a_probe_in_flight_queues_instead_of_failing() -> None:
    async def scenario() -> None:
        now = [0.0]
        cfg = BackendConfig(name="a", url="http://127.0.0.1:1", models=["m"], max_concurrency=4)
        p = Pool([cfg], BreakerConfig(failure_threshold=1, open_s=10), make_load_strategy(2), 4,
                 clock=lambda: now[0])
        a = p.backends["a"]
        a.breaker.record_failure()
        with pytest.raises(NoBackend):  # open: nothing to wait for
            await p.acquire("m", p.key(None), asyncio.get_running_loop().time() + 1)
        now[0] = 10.0
        loop = asyncio.get_running_loop()
        probe = await p.acquire("m", p.key(None), loop.time() + 1)  # the one half-open probe
        waiter = asyncio.create_task(p.acquire("m", p.key(None), loop.time() + 1))
        await asyncio.sleep(0.01)
        assert not waiter.done() and p.queue_depth() == 1
        a.breaker.record_success()  # the probe succeeded: closed again
        p.release(probe)
        assert (await asyncio.wait_for(waiter, 0.5)) is a

    asyncio.run(scenario())


def late_pool(queue_max: int = 8, slots: float = 2.0) -> Pool:
    configs = [BackendConfig(name=n, url="http://127.0.0.1:1", models=["m"]) for n in ("a", "b")]
    p = Pool(configs, BreakerConfig(), make_load_strategy(2), queue_max, late=LateBindingConfig(engine_queue=1))
    for backend in p.backends.values():
        backend.est.slots = slots  # as learned from scrapes: each engine runs 2 sequences at most
    return p


def test_late_binding_holds_requests_while_every_engine_is_full() -> None:
    async def scenario() -> None:
        p = late_pool()
        loop = asyncio.get_running_loop()
        taken = [await p.acquire("m", p.key(None, 100, 32), loop.time() + 1) for _ in range(6)]
        assert sorted(b.name for b in taken) == ["a"] * 3 + ["b"] * 3  # 2 running + 1 queued in each engine
        held = asyncio.create_task(p.acquire("m", p.key(None, 100, 32), loop.time() + 1))
        await asyncio.sleep(0.01)
        assert not held.done() and p.queue_depth() == 1  # in the router, not in an engine's queue
        p.release(taken[0], None)  # a request on `taken[0]` completed: that engine has room
        assert (await asyncio.wait_for(held, 0.5)) is taken[0]
        assert p.queue_depth() == 0
        late = asyncio.create_task(p.acquire("m", p.key(None, 100, 32), loop.time() + 0.05))
        with pytest.raises(QueueTimeout):  # held past its deadline: 503, and nothing leaked
            await late
        assert sum(b.in_flight for b in p.backends.values()) == 6

    asyncio.run(scenario())


def test_late_binding_holds_nothing_until_an_engines_limit_is_known_or_without_a_queue() -> None:
    async def scenario(p: Pool) -> int:
        loop = asyncio.get_running_loop()
        taken = [await asyncio.wait_for(p.acquire("m", p.key(None, 100, 32), loop.time() + 1), 0.5)
                 for _ in range(10)]
        return len(taken)

    assert asyncio.run(scenario(late_pool(slots=math.inf))) == 10  # never seen queueing: no limit to hold at
    assert asyncio.run(scenario(late_pool(queue_max=0))) == 10  # nowhere to hold: bind early


def test_late_binding_never_holds_for_a_single_engine() -> None:
    async def scenario() -> int:
        configs = [BackendConfig(name="a", url="http://127.0.0.1:1", models=["m"])]
        p = Pool(configs, BreakerConfig(), make_load_strategy(2), 8, late=LateBindingConfig())
        p.backends["a"].est.slots = 2.0
        loop = asyncio.get_running_loop()
        taken = [await asyncio.wait_for(p.acquire("m", p.key(None, 100, 32), loop.time() + 1), 0.5)
                 for _ in range(6)]
        return len(taken)

    assert asyncio.run(scenario()) == 6  # its own queue keeps the order, and its metrics see the queue


def test_a_session_follows_the_backend_it_was_last_sent_to_until_it_is_forgotten() -> None:
    now = [0.0]
    configs = [BackendConfig(name=n, url="http://127.0.0.1:1", models=["m"]) for n in ("a", "b")]
    p = Pool(configs, BreakerConfig(), make_load_strategy(2), 4, clock=lambda: now[0],
             affinity=AffinityConfig(ttl_s=60))
    a, b = p.backends["a"], p.backends["b"]
    session = next(k for k in range(100) if rendezvous_rank(a, k) > rendezvous_rank(b, k))  # a breaks ties

    async def send() -> str:
        backend = await p.acquire("m", p.key(session, 100, 32), asyncio.get_running_loop().time() + 1)
        p.release(backend)
        return backend.name

    async def scenario() -> list[str]:
        busy = await p.acquire("m", p.key(None, 100, 32), asyncio.get_running_loop().time() + 1)
        assert busy is a
        first = await send()  # a is busy: the session starts on b
        p.release(busy)
        second = await send()  # both idle, a would win the tie: the session stays on its warm b
        now[0] = 61.0
        third = await send()  # forgotten: warm nowhere, the tie goes to a
        return [first, second, third]

    assert asyncio.run(scenario()) == ["b", "b", "a"]


def test_a_prompt_whose_prefix_a_backend_was_just_sent_is_credited_there() -> None:
    configs = [BackendConfig(name=n, url="http://127.0.0.1:1", models=["m"]) for n in ("a", "b")]
    p = Pool(configs, BreakerConfig(), make_load_strategy(2), 4, affinity=AffinityConfig())
    system = "You are a careful assistant. " * 40  # 4 whole blocks of 256 characters: 256 tokens
    first_blocks = prompt_blocks(system + "first question " * 20, 256)
    second_blocks = prompt_blocks(system + "second question " * 20, 256)

    async def scenario() -> tuple[str, float, str, float]:
        deadline = asyncio.get_running_loop().time() + 1
        key = p.key(None, 400, 32, first_blocks)
        first = await p.acquire("m", key, deadline)
        computed_first = first.pending_prefill
        p.release(first, key)  # done: nothing of it left to prefill
        second = await p.acquire("m", p.key(None, 400, 32, second_blocks), deadline)
        return first.name, computed_first, second.name, second.pending_prefill

    first, computed_first, second, computed_second = asyncio.run(scenario())
    assert computed_first == 400  # nothing cached anywhere: the whole prompt is computed
    assert second == first  # both idle: the one that spares the shared system prompt is faster
    assert computed_second == 400 - 4 * 64
    other = "b" if first == "a" else "a"
    assert p.warmth.prefixes.cached(other, second_blocks) == 0
