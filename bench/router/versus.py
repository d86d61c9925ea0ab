"""Side by side in one run: direct to the backend, through swarm-router, through the Rust vllm-router.

Both routers run at the same time, pinned to the same CPU, in front of the same backend;
windows are interleaved (direct, swarm, rust, direct, ...) so background noise hits all
alike, and every window records ``other_cpu``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rust_router import running as rust_running

from .cpu import Window
from .load import Streams, nonstream_load, quantile, run_streams
from .procs import ROUTER_CPU, canned, fake, swarm_router, tcp_relay, track, untrack
from .scrape import added_latency_ms

__all__ = ["KINDS", "Side", "Target", "added_p99", "nonstream", "streams", "targets"]

KINDS = ("direct", "swarm", "rust")


@dataclass
class Target:
    name: str
    url: str
    pid: int | None  # None: the backend itself (direct)
    auth: bool


@dataclass
class Side:
    """What one target achieved over all rounds of one scenario."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    other_cpu: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    own_added_ms: tuple[float, float] | None = None  # swarm-router's own p50/p99 added-latency histogram
    round_rps: list[float] = field(default_factory=list)
    round_cpu_us: list[float] = field(default_factory=list)

    def add_round(self, requests: int, errors: int, wall: float, cpu: float, p50_ms: float, p99_ms: float,
                  other_cpu: float) -> None:
        self.requests += requests
        self.errors += errors
        self.seconds += wall
        self.cpu += cpu
        self.p50_ms.append(p50_ms)
        self.p99_ms.append(p99_ms)
        self.other_cpu.append(other_cpu)
        self.round_rps.append(requests / wall if wall else math.nan)
        self.round_cpu_us.append(cpu / requests * 1e6 if requests and cpu else math.nan)

    @property
    def best_rps(self) -> float:
        """Noise on a shared machine only ever slows a target down: the best round is the least disturbed."""
        return max(self.round_rps, default=math.nan)

    @property
    def best_cpu_us(self) -> float:
        return min((x for x in self.round_cpu_us if x == x), default=math.nan)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else float("nan")

    @property
    def p99(self) -> float:
        return statistics.median(self.p99_ms) if self.p99_ms else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.p50_ms) if self.p50_ms else float("nan")


@contextmanager
def targets(backend: str) -> Iterator[dict[str, Target]]:
    """swarm-router and vllm-router in front of ``backend``, both on the router CPU."""
    # no concurrency cap: the Rust router has none, and the canned backend needs none
    with swarm_router([backend], cap=100_000) as (s_url, s_pid), rust_running([backend], cpu=ROUTER_CPU) as rust:
        track(rust.pid)
        try:
            yield {"direct": Target("direct", backend, None, False), "swarm": Target("swarm", s_url, s_pid, True),
                   "rust": Target("rust", rust.url, rust.pid, False)}
        finally:
            untrack(rust.pid)


def nonstream(connections: int, seconds: float, rounds: int) -> dict[str, Side]:
    """Closed-loop non-streaming load at ``connections`` against the canned backend."""
    sides = {k: Side() for k in KINDS}
    with canned() as backend, targets(backend) as ts:
        for t in ts.values():
            nonstream_load(t.url, connections, 1.0, t.auth)  # warm-up: connections, caches
        for _ in range(rounds):
            for kind in KINDS:
                t, side = ts[kind], sides[kind]
                with Window() as w:
                    load = nonstream_load(t.url, connections, seconds, t.auth)
                side.add_round(load.requests, load.errors, w.wall, w.cpu(t.pid) if t.pid else 0.0,
                               load.p50_ms, load.p99_ms, w.other_cpu)
        sides["swarm"].own_added_ms = added_latency_ms(ts["swarm"].url)
    return sides


def added_p99(sides: dict[str, Side], kind: str, best: bool = False) -> float:
    """Median over rounds of (routed p99 - direct p99) in the same round, ms; ``best``: min minus min."""
    if best:
        return min(sides[kind].p99_ms) - min(sides["direct"].p99_ms)
    pairs = zip(sides[kind].p99_ms, sides["direct"].p99_ms, strict=True)
    return statistics.median(routed - direct for routed, direct in pairs)


def streams(clients: int, seconds: float, rounds: int) -> dict[str, Side]:
    """Closed-loop streams (32 tokens, 20 ms apart) from ``clients``; ``relay`` is the TCP floor."""
    sides = {k: Side() for k in (*KINDS, "relay")}
    with fake(0.01, 0.02, 32) as backend, targets(backend) as ts, tcp_relay(backend) as relay:
        all_targets = {**ts, "relay": Target("relay", relay, None, False)}
        for t in all_targets.values():
            run_streams(t.url, workers=clients, seconds=0.5, auth=t.auth)
        for _ in range(rounds):
            for kind, t in all_targets.items():
                side = sides[kind]
                with Window() as w:
                    got: Streams = run_streams(t.url, workers=clients, seconds=seconds, auth=t.auth)
                side.add_round(len(got.ttfts), got.errors, w.wall, w.cpu(t.pid) if t.pid else 0.0,
                               quantile(got.ttfts, 0.5) * 1e3, quantile(got.ttfts, 0.99) * 1e3, w.other_cpu)
                side.ttfts += got.ttfts
        sides["swarm"].own_added_ms = added_latency_ms(ts["swarm"].url)
    return sides
