"""The backup job's rendered script against a real PostgreSQL (Debian's), started here in a
temporary data directory: dump, prune by retention, restore into a fresh database."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from swarm.plan import SwarmPlan
from swarm.services import postgres, postgres_backup
from tests.services.loopback import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it with scripts/ci-deps.sh)")
    pytest.skip(reason)


@dataclass
class Server:
    root: Path
    bin: Path
    port: int
    password: str
    run_as: list[str]

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}:/usr/bin:/bin", "PGHOST": "127.0.0.1", "PGPORT": str(self.port),
                "PGUSER": postgres.USER, "LANG": "C", **extra}

    def run(self, args: list[str], env: dict[str, str] | None = None, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.run_as, *args], env=env or self.env(), cwd=self.root, text=True,
                              capture_output=True, timeout=60, check=check, input=stdin)

    def sql(self, database: str, query: str) -> str:
        done = self.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", query],
                        env=self.env(PGPASSWORD=self.password))
        return done.stdout.strip()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        _skip_or_fail("Debian's postgresql is not installed")
    assert bin_dir is not None
    # Not under pytest's tmp dir: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="ai-swarm-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        shutil.chown(root, user.pw_uid, user.pw_gid)
        run_as = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
    srv = Server(root=root, bin=bin_dir, port=free_port(), password="test-" + os.urandom(8).hex(), run_as=run_as)
    (root / "pw").write_text(srv.password)
    if run_as:
        shutil.chown(root / "pw", "postgres")
    srv.run(["initdb", "-D", str(root / "data"), "-U", postgres.USER, "--auth=scram-sha-256",
             f"--pwfile={root / 'pw'}"])
    srv.run(["pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60", "start",
             "-o", f"-p {srv.port} -k {root} -c listen_addresses=127.0.0.1"])
    try:
        srv.run(["createdb", postgres.DATABASE], env=srv.env(PGPASSWORD=srv.password))
        yield srv
    finally:
        srv.run(["pg_ctl", "-D", str(root / "data"), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def job(server: Server, prod_plan: SwarmPlan, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The rendered script and the job's environment from the plan, with loopback and temp paths."""
    plan = prod_plan.service(postgres_backup.instance_name("postgres"))
    work = server.root / f"job-{tmp_path.name}"
    work.mkdir()
    script = work / postgres_backup.SCRIPT
    script.write_text(next(f.content for f in plan.files if f.name == postgres_backup.SCRIPT))
    env = dict(plan.env)
    assert env["PGHOST"] == "postgres" and env["PGDATABASE"] == postgres.DATABASE  # what the container gets
    env |= {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGPASSWORD_FILE": str(server.root / "pw"),
            "BACKUP_DIR": str(work / "dumps"), "BACKUP_KEEP": "2", "BACKUP_STATUS": str(work / "status")}
    if server.run_as:
        shutil.chown(work, "postgres")
    yield script, server.env(**env)
    shutil.rmtree(work, ignore_errors=True)


def test_dumps_prune_to_the_retention_and_restore_into_a_fresh_database(server: Server,
                                                                           job: tuple[Path, dict[str, str]]) -> None:
    script, env = job
    server.sql(postgres.DATABASE, "CREATE TABLE spend (id serial PRIMARY KEY, key text, usd numeric);"
                                  "INSERT INTO spend (key, usd) "
                                  "SELECT 'k' || g, g * 0.01 FROM generate_series(1, 500) g;")
    dumps: list[str] = []
    for _ in range(3):
        done = server.run(["sh", str(script), "once"], env=env, check=False)
        assert done.returncode == 0, done.stderr
        time.sleep(1.1)  # one-second timestamps
        dumps = server.run(["sh", str(script), "list"], env=env).stdout.split()
    assert len(dumps) == 2  # BACKUP_KEEP=2: the oldest of three was pruned
    assert all(d.startswith(f"{postgres.DATABASE}-") and d.endswith(".dump") for d in dumps)
    assert dumps == sorted(dumps, reverse=True)
    newest = Path(env["BACKUP_DIR"]) / dumps[0]
    assert newest.read_bytes()[:5] == b"PGDMP"  # custom format (compressed)
    assert not list(Path(env["BACKUP_DIR"]).glob(".*partial"))

    server.sql(postgres.DATABASE, "DELETE FROM spend WHERE id > 10")  # changes after the dump are not restored
    done = server.run(["sh", str(script), "restore", dumps[0], "restored"], env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert server.sql("restored", "SELECT count(*), sum(usd) FROM spend") == "500|1252.50"
    assert server.run(["sh", str(script), "health"], env=env, check=False).returncode == 0


def test_a_failed_dump_marks_the_job_unhealthy_and_keeps_old_dumps(server: Server,
                                                                     job: tuple[Path, dict[str, str]]) -> None:
    script, env = job
    assert server.run(["sh", str(script), "once"], env=env, check=False).returncode == 0
    wrong = server.root / f"wrong-{os.getpid()}"
    wrong.write_text("not-the-password")
    if server.run_as:
        shutil.chown(wrong, "postgres")
    failed = server.run(["sh", str(script), "once"], env=env | {"PGPASSWORD_FILE": str(wrong)}, check=False)
    assert failed.returncode != 0
    assert server.run(["sh", str(script), "health"], env=env, check=False).returncode == 1
    assert len(server.run(["sh", str(script), "list"], env=env).stdout.split()) == 1
    assert not list(Path(env["BACKUP_DIR"]).glob(".*partial"))


def test_the_loop_waits_until_the_configured_time(server: Server, job: tuple[Path, dict[str, str]]) -> None:
    script, env = job
    at = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%H:%M")
    wait = int(server.run(["sh", str(script), "next"], env=env | {"BACKUP_AT": at}).stdout)
    assert 60 <= wait <= 120
    now = datetime.now(UTC).strftime("%H:%M")  # this minute has started: the next one is tomorrow
    wait = int(server.run(["sh", str(script), "next"], env=env | {"BACKUP_AT": now}).stdout)
    assert 86400 - 61 <= wait <= 86400
