"""Processes a router benchmark starts: pinned, waited for, always stopped, and tracked for CPU accounting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _support import free_port, pin, stop_process, wait_http

__all__ = ["API_KEY", "LOAD_CPU", "ROUTER_CPU", "cpu_seconds", "fake", "pin", "process", "swarm_router",
           "tracked_pids"]

ROUTER_CPU, LOAD_CPU = 0, 1
API_KEY = "bench-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")
_TRACKED: set[int] = set()


def tracked_pids() -> set[int]:
    """Pids of the long-running processes this benchmark started and has not stopped yet."""
    return set(_TRACKED)


def track(pid: int) -> None:
    _TRACKED.add(pid)


def untrack(pid: int) -> None:
    _TRACKED.discard(pid)


def cpu_seconds(pid: int | str) -> float:
    """utime + stime of a process, all its threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@contextmanager
def process(args: list[str], cpu: int, ready_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``args`` pinned to ``cpu`` until the block ends; yields its pid once ``ready_url`` answers."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                env={**os.environ, **(env or {})}, preexec_fn=lambda: pin(cpu))
        track(proc.pid)
        try:
            try:
                wait_http(ready_url)
            except RuntimeError:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace")[-4000:])
                raise
            yield proc.pid
        finally:
            stop_process(proc)
            untrack(proc.pid)


@contextmanager
def fake(ttft: float, per_token: float, tokens: int, max_num_seqs: int | None = None) -> Iterator[str]:
    """A fake vLLM (``swarm-fake-vllm``) on the load CPU; yields its base URL."""
    port = free_port()
    args = [sys.executable, "-m", "swarm_runtime.testing.fake_vllm_cli", "--port", str(port), "--model", "primary",
            "--ttft", str(ttft), "--per-token", str(per_token), "--tokens", str(tokens)]
    if max_num_seqs:
        args += ["--max-num-seqs", str(max_num_seqs)]
    url = f"http://127.0.0.1:{port}"
    with process(args, LOAD_CPU, url + "/health"):
        yield url


@contextmanager
def canned() -> Iterator[str]:
    """The fastest possible backend (``canned.py``), so the router under test is the bottleneck."""
    port = free_port()
    args = [sys.executable, str(Path(__file__).with_name("canned.py")), str(port)]
    url = f"http://127.0.0.1:{port}"
    with process(args, LOAD_CPU, url + "/health"):
        yield url


@contextmanager
def swarm_router(backends: list[str], strategy: str = "load", cap: int = 64,
                 **extra: object) -> Iterator[tuple[str, int]]:
    """swarm-router on the router CPU in front of ``backends`` (``cap``: max_concurrency); yields (URL, pid)."""
    port = free_port()
    cfg: dict[str, object] = {**extra, "listen": {"host": "127.0.0.1", "port": port},
                              "api_key_env": "ROUTER_API_KEY", "strategy": strategy, "log_level": "warning",
                              "backends": [{"name": f"b{i}", "url": u, "models": ["primary"], "max_concurrency": cap}
                                           for i, u in enumerate(backends)]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(cfg, f)  # JSON is YAML
    try:
        args = [sys.executable, "-m", "swarm_runtime.router.cli", "--config", f.name]
        env = {"ROUTER_API_KEY": API_KEY, "PYTHONWARNINGS": "ignore"}
        url = f"http://127.0.0.1:{port}"
        with process(args, ROUTER_CPU, url + "/health", env) as pid:
            yield url, pid
    finally:
        os.unlink(f.name)


@contextmanager
def tcp_relay(target: str) -> Iterator[str]:
    """A bare asyncio byte pipe (``relay.py``) on the router CPU: the floor for any proxy."""
    port = free_port()
    target_port = target.rsplit(":", 1)[1]
    args = [sys.executable, str(Path(__file__).with_name("relay.py")), str(port), target_port]
    with process(args, ROUTER_CPU, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"
