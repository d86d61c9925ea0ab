"""The rendered redis.conf and the container's entrypoint and healthcheck, run against a real
`redis-server` (Debian's): auth required, persistence on, admin commands gone."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarm.plan import SwarmPlan
from swarm.plan.types import secret_path
from swarm.services import redis
from tests.services.loopback import free_port


@dataclass
class Redis:
    work: Path
    port: int
    password: str
    popen: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, password: str | None = None) -> str:
        env = {**os.environ, "REDISCLI_AUTH": password} if password else {
            k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args], env=env, capture_output=True, text=True,
                              timeout=10)
        return (done.stdout + done.stderr).strip()

    def localise(self, text: str) -> str:
        """Container paths -> this test's directory."""
        return (text.replace(secret_path(redis.PASSWORD), str(self.work / "secret"))
                .replace(redis.AUTH_FILE, str(self.work / "auth.conf"))
                .replace(f"{redis.CONFIG_DIR}/{redis.CONFIG_NAME}", str(self.work / "redis.conf")))

    def start(self) -> None:
        # The container's entrypoint, as planned: sh -c SCRIPT $0 CONFIG
        shell, flag, script, argv0 = redis.ENTRYPOINT
        with (self.work / "redis.log").open("ab") as log:
            self.popen = subprocess.Popen([shell, flag, self.localise(script), argv0, str(self.work / "redis.conf")],
                                          stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        deadline = time.monotonic() + 20
        while "PONG" not in self.cli("ping", password=self.password):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.work / "redis.log").read_text())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()  # SIGTERM: Redis fsyncs the AOF and exits, as on `docker stop`
            self.popen.wait(timeout=20)


@pytest.fixture
def server(prod_plan: SwarmPlan, tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed in CI (scripts/ci-deps.sh installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    plan = prod_plan.service("redis")
    config = next(f.content for f in plan.files if f.name == redis.CONFIG_NAME)
    assert config == redis.render_config()
    srv = Redis(work=tmp_path, port=free_port(), password=os.urandom(12).hex())
    (tmp_path / "secret").write_text(srv.password)
    # Loopback only, and this test's directory for data; everything else exactly as rendered.
    local = (config.replace("bind 0.0.0.0 -::*", "bind 127.0.0.1")
             .replace(f"port {redis.PORT}", f"port {srv.port}").replace("dir /data", f"dir {tmp_path}"))
    (tmp_path / "redis.conf").write_text(srv.localise(local))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_auth_is_required(server: Redis) -> None:
    assert "NOAUTH" in server.cli("ping")
    assert "NOAUTH" in server.cli("get", "x")
    assert "WRONGPASS" in server.cli("ping", password="wrong") or "invalid" in server.cli("ping", password="wrong")
    assert server.cli("ping", password=server.password) == "PONG"
    assert oct((server.work / "auth.conf").stat().st_mode & 0o777) == "0o600"  # umask 077


def test_persistence_and_memory_settings(server: Redis) -> None:
    info = server.cli("info", "persistence", password=server.password)
    assert "aof_enabled:1" in info
    memory = server.cli("info", "memory", password=server.password)
    assert f"maxmemory:{redis.MAXMEMORY_MB * 1024 * 1024}" in memory
    assert "maxmemory_policy:volatile-lru" in memory
    assert "unknown command" in server.cli("config", "get", "requirepass", password=server.password).lower()


def test_data_survives_a_restart(server: Redis) -> None:
    assert server.cli("set", "spend:key1", "12.5", password=server.password) == "OK"
    server.stop()
    assert list(server.work.glob("appendonlydir/*.aof")), "no append-only file written"
    server.start()
    assert server.cli("get", "spend:key1", password=server.password) == "12.5"


def test_the_planned_healthcheck(server: Redis, prod_plan: SwarmPlan) -> None:
    test = prod_plan.service("redis").healthcheck.test
    assert test == redis.HEALTH
    command = [test[0], test[1], server.localise(test[2]).replace(f"-p {redis.PORT}", f"-p {server.port}")]
    assert subprocess.run(command, timeout=10).returncode == 0
    (server.work / "secret").write_text("wrong")
    assert subprocess.run(command, timeout=10, capture_output=True).returncode != 0
