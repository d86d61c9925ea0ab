"""Per-backend run-time state, concurrency caps and the bounded wait queue.

The pool owns admission: a request gets a slot on a backend chosen by the strategy among
the backends with a free slot, or waits in one queue shared by all backends until a slot is
handed to it, its deadline passes (503) or the queue is full (429). Caps can change at run
time (the autotuner's actuator); raising one hands slots to waiters at once.

With late binding (``late_binding`` in the config), a request also waits while every engine
that could serve it holds its sequence limit plus ``engine_queue`` requests; when one has room,
``release.next_release`` picks which waiting request goes where (runtime/ROUTING.md). Without
it, waiters are served first come, first served.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .breaker import CircuitBreaker
from .config import AffinityConfig, BackendConfig, BreakerConfig, LateBindingConfig
from .estimator import EstimatedLoad, LoadEstimator
from .prefixes import Warmth
from .release import GREEDY, RELEASE_WINDOW, hold, next_release
from .routing import RequestKey, Strategy

__all__ = ["Backend", "NoBackend", "Pool", "QueueFull", "QueueTimeout"]

TTFT_ALPHA = 0.1  # weight of the newest sample: ~10 requests of memory


class NoBackend(Exception):
    """No healthy backend serves the model (after excluding the ones already tried)."""


class QueueFull(Exception):
    """Every backend is at its cap and the wait queue is full."""


class QueueTimeout(Exception):
    """The request waited for a slot until its deadline."""


@dataclass(eq=False)
class Backend(EstimatedLoad):
    """One backend's live state; strategies read it through ``routing.BackendStats``."""

    config: BackendConfig
    breaker: CircuitBreaker
    limit: int
    name: str = ""
    salt: int = 0
    in_flight: int = 0
    healthy: bool = True
    health_failures: int = 0
    health_successes: int = 0
    waiting: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0
    ttft_ewma: float = 0.0
    scraped_at: float | None = None
    models: frozenset[str] = field(default_factory=frozenset)
    est: LoadEstimator = field(default_factory=LoadEstimator)

    def __post_init__(self) -> None:
        self.name = self.config.name
        self.salt = zlib.crc32(self.name.encode())
        self.models = frozenset(self.config.models)
        self.est.token_budget = self.config.token_budget

    def observe_ttft(self, seconds: float) -> None:
        """Fold one upstream time-to-first-byte sample into the EWMA the strategy reads."""
        self.ttft_ewma = seconds if self.ttft_ewma <= 0 else self.ttft_ewma + TTFT_ALPHA * (seconds - self.ttft_ewma)

    def available(self) -> bool:
        """May receive a request right now."""
        return self.healthy and self.breaker.can_accept()

    def routable(self) -> bool:
        """Worth waiting for: healthy and not cut off by an open breaker (half-open and panic count)."""
        return self.healthy and self.breaker.routable()

    def has_slot(self) -> bool:
        return self.in_flight < self.limit and self.available()

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "url": self.config.url, "models": sorted(self.models),
            "healthy": self.healthy, "breaker": self.breaker.state.value, "in_flight": self.in_flight,
            "limit": self.limit, "waiting": self.waiting, "running": self.running,
            "kv_usage": self.kv_usage, "ttft_ewma_s": self.ttft_ewma, "scraped_at": self.scraped_at,
            **self.est.describe(),
        }


@dataclass(eq=False, slots=True)
class _Waiter:
    model: str
    key: RequestKey
    exclude: frozenset[str]
    future: asyncio.Future[Backend]
    since: float = 0.0


class Pool:
    """Admission control over all backends."""

    def __init__(
        self,
        configs: Iterable[BackendConfig],
        breaker: BreakerConfig,
        strategy: Strategy,
        queue_max: int,
        clock: Callable[[], float] = time.monotonic,
        late: LateBindingConfig | None = None,
        affinity: AffinityConfig | None = None,
    ) -> None:
        self.backends: dict[str, Backend] = {}
        for cfg in configs:
            cb = CircuitBreaker(clock, breaker.failure_threshold, breaker.open_s,
                                breaker.half_open_probes, breaker.success_threshold)
            self.backends[cfg.name] = Backend(cfg, cb, cfg.max_concurrency)
        self.by_model: dict[str, tuple[Backend, ...]] = {}
        for backend in self.backends.values():
            for model in backend.models:
                self.by_model[model] = (*self.by_model.get(model, ()), backend)
        self.strategy = strategy
        self.queue_max = queue_max
        self.clock = clock
        self.late = late if late is not None and late.enabled and queue_max > 0 else None
        self.affinity = affinity or AffinityConfig()
        self.warmth = Warmth(self.affinity, clock)
        self.waiters: deque[_Waiter] = deque()
        self._seq = 0

    def models(self) -> list[str]:
        return sorted(self.by_model)

    def key(self, affinity: int | None, prompt_tokens: int = 0, max_tokens: int = 0,
            blocks: tuple[int, ...] = ()) -> RequestKey:
        self._seq += 1
        return RequestKey(affinity, self._seq, prompt_tokens, max_tokens, blocks=blocks)

    def _free(self, model: str, exclude: frozenset[str] = frozenset()) -> list[Backend]:
        """The backends that may take a request for ``model`` now: serving it, available, under their cap."""
        return [b for b in self.by_model.get(model, ()) if b.has_slot() and b.name not in exclude]

    def _pick(self, free: Sequence[Backend], key: RequestKey) -> Backend | None:
        if not free:
            return None
        choice = self.strategy(free, self.warmth.warmed(key, [b.name for b in free]))
        return choice if isinstance(choice, Backend) else None

    def _choose(self, model: str, key: RequestKey, exclude: frozenset[str]) -> Backend | None:
        return self._pick(self._free(model, exclude), key)

    def _may_bind_now(self, free: Sequence[Backend]) -> bool:
        """Without late binding always; with it, some engine among ``free`` has room, or only one
        could take the request (one engine: holding decides nothing)."""
        late = self.late
        return late is None or len(free) < 2 or any(b.engine_room(late.engine_queue) for b in free)

    def _take(self, backend: Backend, key: RequestKey) -> Backend:
        """Bind ``key`` to ``backend``: its prompt counts as the tokens the backend will compute."""
        backend.est.sent(key.seq, self.warmth.bind(key, backend.name), key.max_tokens, backend.in_flight)
        backend.in_flight += 1
        backend.breaker.on_start()
        return backend

    async def acquire(self, model: str, key: RequestKey, deadline: float,
                      exclude: frozenset[str] = frozenset()) -> Backend:
        """A slot on a backend for ``model``; waits in the queue until ``deadline`` (loop time)."""
        if not any(b.routable() and b.name not in exclude for b in self.by_model.get(model, ())):
            raise NoBackend(model)
        if not self.waiters and self._may_bind_now(free := self._free(model, exclude)):
            choice = self._pick(free, key)
            if choice is not None:
                return self._take(choice, key)
        if len(self.waiters) >= self.queue_max:
            raise QueueFull(model)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(model, key, exclude, loop.create_future(), self.clock())
        self.waiters.append(waiter)
        self.dispatch()
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter.future
        except TimeoutError:
            self._give_back(waiter)
            raise QueueTimeout(model) from None
        except asyncio.CancelledError:
            self._give_back(waiter)
            raise
        finally:
            if not waiter.future.done():
                waiter.future.cancel()
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    def _give_back(self, waiter: _Waiter) -> None:
        """A slot handed to a waiter that no longer wants it goes to the next one."""
        future = waiter.future
        if future.done() and not future.cancelled():
            self.release(future.result(), waiter.key)

    def release(self, backend: Backend, key: RequestKey | None = None) -> None:
        """Give the slot back; with the request's ``key`` its timing feeds the backend's rates."""
        backend.in_flight -= 1
        if key is not None:
            backend.est.finished(key.seq)
        if self.waiters:
            self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiters (called when capacity may have appeared)."""
        if not self.waiters:
            return
        if self.late is not None:
            self._release_late(self.late.engine_queue)
            return
        served: list[_Waiter] = []
        for waiter in self.waiters:
            if waiter.future.done():
                served.append(waiter)
                continue
            choice = self._choose(waiter.model, waiter.key, waiter.exclude)
            if choice is not None:
                waiter.future.set_result(self._take(choice, waiter.key))
                served.append(waiter)
            elif not any(b.has_slot() for b in self.backends.values()):
                break
        for waiter in served:
            self.waiters.remove(waiter)

    def _release_late(self, engine_queue: int) -> None:
        """Release held requests one at a time while some engine has room for them."""
        for _ in range(len(self.waiters)):
            live = [w for w in self.waiters if not w.future.done()]
            if not any(self._release_one(model, [w for w in live if w.model == model], engine_queue)
                       for model in dict.fromkeys(w.model for w in live)):
                break
        for waiter in [w for w in self.waiters if w.future.done()]:
            self.waiters.remove(waiter)

    def _release_one(self, model: str, group: list[_Waiter], engine_queue: int) -> bool:
        """Send one of ``group`` (a model's waiters, oldest first) if an engine for it has room."""
        candidates = self._free(model)
        if not candidates:
            return False
        now = self.clock()
        names = [b.name for b in candidates]
        held = [hold(now - w.since, self.warmth.warmed(w.key, names), candidates, self.affinity.slack, w.exclude)
                for w in group[:RELEASE_WINDOW]]
        chosen = next_release(candidates, held, engine_queue)
        if chosen is None:
            return False
        k, i = chosen
        waiter = group[k]
        backend = self._choose(model, waiter.key, waiter.exclude) if i == GREEDY else candidates[i]
        if backend is None:
            return False
        waiter.future.set_result(self._take(backend, waiter.key))
        return True

    def set_limit(self, name: str, limit: int) -> Backend:
        backend = self.backends[name]
        backend.limit = limit
        self.dispatch()
        return backend

    def queue_depth(self) -> int:
        return len(self.waiters)
