"""The Rust ``vllm-router`` (PyPI ``vllm-router``) as a side-by-side peer for benchmarks.

It is installed into a bench-only virtualenv (``bench/.venv-peers``, git-ignored) so the
project's own environment never depends on it, and started on a free 127.0.0.1 port.

Stable API (other benchmarks import it; keep these signatures)::

    from rust_router import ensure_installed, running, start

    exe = ensure_installed()                       # idempotent; pip only when missing
    with running(["http://127.0.0.1:8001"], policy="round_robin", cpu=0) as rr:
        rr.url, rr.pid                             # base URL, pid for CPU accounting
    rr = start([...]); ...; rr.stop()              # the same without a context manager

The router runs in one process (a Python launcher that hands over to the Rust server in
the same pid, threads included), so ``/proc/<pid>/stat`` CPU times cover all of its work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from _support import free_port, stop_process

__all__ = ["PEER_VENV", "VLLM_ROUTER_VERSION", "RustRouter", "ensure_installed", "running", "start"]

PEER_VENV = Path(__file__).resolve().parent / ".venv-peers"
VLLM_ROUTER_VERSION = "0.1.17"


def ensure_installed(venv_dir: Path = PEER_VENV, version: str = VLLM_ROUTER_VERSION) -> Path:
    """Path of the ``vllm-router`` launcher, installing ``vllm-router==version`` into ``venv_dir`` if needed."""
    exe = venv_dir / "bin" / "vllm-router"
    python = venv_dir / "bin" / "python"
    if exe.exists() and _installed_version(python) == version:
        return exe
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"vllm-router=={version}"], check=True)
    if not exe.exists():
        raise RuntimeError(f"pip installed vllm-router=={version} but {exe} is missing")
    return exe


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('vllm-router'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None


@dataclass
class RustRouter:
    """A running ``vllm-router``; :meth:`stop` ends it (idempotent)."""

    url: str
    port: int
    pid: int
    proc: subprocess.Popen[bytes] = field(repr=False)
    log: IO[bytes] = field(repr=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc)
        self.log.close()

    def log_text(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def start(worker_urls: Sequence[str], *, policy: str = "round_robin", port: int | None = None,
          cpu: int | None = None, extra_args: Sequence[str] = (), ready_timeout: float = 30.0,
          venv_dir: Path = PEER_VENV) -> RustRouter:
    """Start ``vllm-router`` in front of ``worker_urls`` on 127.0.0.1 and wait until ``/health`` answers 200.

    ``cpu`` pins the process (and its threads) to one CPU; ``extra_args`` go to the CLI as is
    (e.g. ``["--disable-retries"]``). Retries and the circuit breaker keep their defaults.
    """
    exe = ensure_installed(venv_dir)
    port = port or free_port()
    args = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--policy", policy,
            "--log-level", "warning", "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
            "--worker-urls", *worker_urls, *extra_args]
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- owned by RustRouter, closed in stop()

    def pin() -> None:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})

    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    router = RustRouter(f"http://127.0.0.1:{port}", port, proc.pid, proc, log)
    try:
        _wait_ready(router, ready_timeout)
    except BaseException:
        text = router.log_text()
        router.stop()
        sys.stderr.write(text[-4000:])
        raise
    return router


def _wait_ready(router: RustRouter, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if router.proc.poll() is not None:
            raise RuntimeError(f"vllm-router exited with code {router.proc.returncode}")
        try:
            with urllib.request.urlopen(router.url + "/health", timeout=1):
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise RuntimeError(f"vllm-router on {router.url} not ready within {timeout} s")


@contextmanager
def running(worker_urls: Sequence[str], *, policy: str = "round_robin", port: int | None = None,
            cpu: int | None = None, extra_args: Sequence[str] = (), ready_timeout: float = 30.0,
            venv_dir: Path = PEER_VENV) -> Iterator[RustRouter]:
    """:func:`start` as a context manager that always stops the router."""
    router = start(worker_urls, policy=policy, port=port, cpu=cpu, extra_args=extra_args,
                   ready_timeout=ready_timeout, venv_dir=venv_dir)
    try:
        yield router
    finally:
        router.stop()
