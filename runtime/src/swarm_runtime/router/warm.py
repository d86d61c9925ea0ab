"""Where each session or prompt prefix was last sent: the backend whose prefix cache may still hold it.

vLLM keeps a finished request's KV blocks cached until it needs the memory, so the backend a
prefix last went to is the one that can skip its prefill. The strategy prefers it within a
bounded delay (``routing.make_load_strategy``); a key never seen, or not seen for ``ttl_s``, is
warm nowhere and goes by load alone. Bounded: at most ``capacity`` keys, the least recently
sent dropped first. No I/O; the clock is injected.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["WarmPrefixes"]


class WarmPrefixes:
    """Affinity key → (backend name, when it was sent there), for at most ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float, capacity: int, clock: Callable[[], float]) -> None:
        if ttl_s <= 0 or capacity < 1:
            raise ValueError(f"WarmPrefixes needs ttl_s > 0 and capacity >= 1, got {ttl_s} and {capacity}")
        self.ttl_s = ttl_s
        self.capacity = capacity
        self.clock = clock
        self._last: OrderedDict[int, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def sent(self, affinity: int, backend: str) -> None:
        """A request with this key was just bound to ``backend``."""
        self._last[affinity] = (backend, self.clock())
        self._last.move_to_end(affinity)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)

    def where(self, affinity: int | None) -> str | None:
        """The backend this key was last sent to within ``ttl_s``, else None."""
        if affinity is None or (entry := self._last.get(affinity)) is None:
            return None
        backend, at = entry
        if self.clock() - at > self.ttl_s:
            del self._last[affinity]
            return None
        return backend
