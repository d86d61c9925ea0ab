"""Small helpers the runtime tests share."""

from __future__ import annotations

import socket


class FakeClock:
    """A monotonic clock the test moves by hand (`clock.t += 5`)."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for servers that cannot bind port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
