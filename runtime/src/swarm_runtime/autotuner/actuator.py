"""Enforcement: push a backend's limit to swarm-router's admin API, or only report it.

Kept apart from the control law (which never does I/O). Failures never stop the tuner: the
limit keeps being computed and the push is retried with bounded exponential backoff. The
router loses runtime caps when it restarts, so a successful push is repeated every
``resync_s`` even when the limit did not change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from swarm_runtime.autotuner.types import Clock

__all__ = ["Actuator", "DryRunActuator", "PushResult", "RouterActuator"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """``applied``: the router holds ``limit`` now; ``attempted``: a request was sent."""

    applied: bool
    attempted: bool
    error: str | None = None


class Actuator(Protocol):
    async def push(self, backend: str, limit: int) -> PushResult: ...


class DryRunActuator:
    """Reports what would be pushed; never touches the router."""

    def __init__(self) -> None:
        self.reported: dict[str, int] = {}

    async def push(self, backend: str, limit: int) -> PushResult:
        if self.reported.get(backend) != limit:
            log.info("dry-run: would set router backend %s limit=%d", backend, limit)
            self.reported[backend] = limit
        return PushResult(applied=False, attempted=False)


@dataclass
class _State:
    applied: int | None = None
    applied_at: float = 0.0
    next_try_at: float = 0.0
    backoff_s: float = 0.0
    failures: int = 0


class RouterActuator:
    """``PUT {router}/admin/backends/{name}/limit`` with the admin bearer key."""

    def __init__(self, router_url: str, admin_key: str | None, session: aiohttp.ClientSession,
                 clock: Clock, timeout_s: float = 2.0, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0, resync_s: float = 60.0) -> None:
        self._base = router_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._resync_s = resync_s
        self._state: dict[str, _State] = {}

    def failures(self, backend: str) -> int:
        """Consecutive failed pushes for ``backend`` (0 once a push succeeds)."""
        return self._state.get(backend, _State()).failures

    async def push(self, backend: str, limit: int) -> PushResult:
        state = self._state.setdefault(backend, _State())
        now = self._clock()
        fresh = state.applied == limit and now - state.applied_at < self._resync_s
        if fresh:
            return PushResult(applied=True, attempted=False)
        if now < state.next_try_at:
            return PushResult(applied=False, attempted=False, error="backing off")
        error = await self._put(backend, limit)
        now = self._clock()
        if error is None:
            if state.failures:
                log.info("router reachable again; backend %s limit=%d applied", backend, limit)
            state.applied, state.applied_at, state.failures, state.backoff_s = limit, now, 0, 0.0
            state.next_try_at = now
            return PushResult(applied=True, attempted=True)
        state.failures += 1
        state.backoff_s = min(self._backoff_max, state.backoff_s * 2 or self._backoff_initial)
        state.next_try_at = now + state.backoff_s
        state.applied = None
        log.warning("could not set router backend %s limit=%d: %s (retry in %.1fs)", backend, limit,
                    error, state.backoff_s)
        return PushResult(applied=False, attempted=True, error=error)

    async def _put(self, backend: str, limit: int) -> str | None:
        url = f"{self._base}/admin/backends/{backend}/limit"
        try:
            async with self._session.put(url, json={"limit": limit}, headers=self._headers,
                                         timeout=self._timeout) as resp:
                if resp.status == 200:
                    return None
                detail = (await resp.text())[:200]
        except (TimeoutError, aiohttp.ClientError) as exc:
            return f"router unreachable ({exc or type(exc).__name__})"
        hint = {401: " (wrong admin key: check the env var named by router.admin_key_env)",
                403: " (the router's admin API is disabled: set its admin key)",
                404: " (the router has no backend of that name)"}.get(resp.status, "")
        return f"HTTP {resp.status}{hint}: {detail}"
