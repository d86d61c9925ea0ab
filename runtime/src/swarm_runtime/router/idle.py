"""A cheap idle timeout for long streams."""

from __future__ import annotations

import asyncio

__all__ = ["IdleWatch"]


class IdleWatch:
    """Cancels the current task after ``idle_s`` without news: set ``last`` (loop time) on every chunk.

    ``asyncio.timeout(...).reschedule()`` per chunk would cancel and re-create a timer for every
    token of every stream; this keeps one timer per ``idle_s`` and re-arms it lazily. After
    a cancel it set ``fired``; the task tells it from other cancellations with ``uncancel()``.
    """

    __slots__ = ("fired", "handle", "idle_s", "last", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle_s: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("IdleWatch needs a running task")
        self.loop = loop
        self.task = task
        self.idle_s = idle_s
        self.fired = False
        self.last = loop.time()
        self.handle = loop.call_at(self.last + idle_s, self._check)

    def _check(self) -> None:
        if self.loop.time() - self.last >= self.idle_s:
            self.fired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_at(self.last + self.idle_s, self._check)

    def cancel(self) -> None:
        self.handle.cancel()
