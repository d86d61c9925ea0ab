"""The real ``swarm-router``, started as a subprocess on 127.0.0.1 in front of the fake vLLM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
from _support import free_port

from autotune.sim import MODEL, SCALE

ADMIN_KEY = "bench-admin-key"
ADMIN_KEY_ENV = "BENCH_ROUTER_ADMIN_KEY"
BACKEND = "sim"
QUEUE_DEADLINE_S = 0.05  # simulated: the router sheds what cannot get a slot this fast


def router_command() -> list[str]:
    exe = shutil.which("swarm-router", path=str(Path(sys.executable).parent)) or shutil.which("swarm-router")
    cmd = [exe] if exe else [sys.executable, "-c", "from swarm_runtime.router.cli import main; main()"]
    # The router stops by itself even if this script dies without cleaning up.
    timeout = shutil.which("timeout")
    return [timeout, "1800", *cmd] if timeout else cmd


async def start_router(backend_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = workdir / "router.yaml"
    cfg.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "api_key_env: null\n"
        f"admin_key_env: {ADMIN_KEY_ENV}\n"
        "retries: 0\n"
        f"queue: {{max_size: 64, deadline_s: {QUEUE_DEADLINE_S / SCALE}, retry_after_s: 1}}\n"
        "health: {interval_s: 1.0, scrape_interval_s: 1.0}\n"
        "breaker: {failure_threshold: 1000}\n"
        "affinity: {enabled: false}\n"
        "log_level: warning\n"
        f"backends:\n  - {{name: {BACKEND}, url: \"{backend_url}\", models: [{MODEL}], max_concurrency: 16}}\n")
    env = {**os.environ, ADMIN_KEY_ENV: ADMIN_KEY}
    log_path = workdir / "router.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*router_command(), "--config", str(cfg)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # up to ~10 s
            if proc.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return proc, url
            await asyncio.sleep(0.1)
    proc.kill()
    proc.wait(5)
    raise SystemExit(f"swarm-router did not start; see {log_path}:\n" + log_path.read_text()[-2000:])
