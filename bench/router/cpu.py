"""CPU accounting: the processes under test, and ``other_cpu``, what everything else used meanwhile.

Two cores are shared with other work on this machine; a window in which other processes
burned CPU measures them as much as the routers. :class:`Window` takes the machine's busy
time from ``/proc/stat`` and subtracts what this benchmark's own processes used (itself, the
children it reaped, e.g. ``wrk``, and the servers it started), so every measurement carries
its own noise figure and a noisy run can be discarded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .procs import cpu_seconds, tracked_pids

__all__ = ["NOISY_OTHER_CPU", "Window", "busy_seconds"]

NOISY_OTHER_CPU = 0.10  # cores; above this a window is flagged noisy
CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU-seconds all CPUs spent non-idle since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / CLK_TCK  # minus idle and iowait


def _own_seconds(pids: set[int]) -> float:
    times = os.times()
    return cpu_seconds("self") + times.children_user + times.children_system + sum(cpu_seconds(p) for p in pids)


@dataclass
class Window:
    """Measures one load window: ``with Window() as w: ...`` then ``w.other_cpu`` (cores) and ``w.cpu(pid)``."""

    pids: set[int] = field(default_factory=set)
    other_cpu: float = float("nan")
    wall: float = 0.0
    _start: dict[int, float] = field(default_factory=dict)
    _t0: float = 0.0
    _busy0: float = 0.0
    _own0: float = 0.0
    _end: dict[int, float] = field(default_factory=dict)

    def __enter__(self) -> Window:
        self.pids = tracked_pids() | self.pids
        self._start = {p: cpu_seconds(p) for p in self.pids}
        self._t0, self._busy0, self._own0 = time.monotonic(), busy_seconds(), _own_seconds(set())
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = {p: cpu_seconds(p) for p in self.pids}
        own = _own_seconds(set()) - self._own0 + sum(self._end[p] - self._start[p] for p in self.pids)
        self.wall = time.monotonic() - self._t0
        self.other_cpu = max(0.0, (busy_seconds() - self._busy0 - own) / max(self.wall, 1e-9))

    def cpu(self, pid: int) -> float:
        """CPU-seconds ``pid`` used in the window."""
        return self._end[pid] - self._start[pid]


def idle_share(seconds: float = 1.0) -> float:
    """Other processes' CPU use (cores) over ``seconds`` before the benchmark starts."""
    with Window() as w:
        time.sleep(seconds)
    return w.other_cpu
