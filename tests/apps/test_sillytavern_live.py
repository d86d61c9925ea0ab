"""The real SillyTavern (npm `sillytavern`, the release the pinned image was built from) run with
the config.yaml the plan renders: its own access control and its healthcheck, on 127.0.0.1.

The container's start command fills the password placeholder in (tests/apps/test_engine_start.py
runs that on a real engine); here the same substitution is done in Python. Only the listen
address, port and data root are set on the command line, as a laptop needs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swarm.plan import SwarmPlan
from swarm.services import sillytavern
from tests.services.loopback import Proc, free_port, start, wait_http
from tests.tools import require_tool

RELEASE = "1.19.0"  # npm, 2026-09-14: the `latest` the pinned image digest was seen as (September 2026)
START_TIMEOUT_S = 150.0  # the first start builds the front-end bundle: ~40 s on two busy cores


@dataclass
class Tavern:
    proc: Proc
    url: str
    password: str
    app: Path
    data: Path
    env: dict[str, str]
    healthcheck: tuple[str, ...]


def _install(root: Path) -> Path:
    npm = require_tool("npm")
    subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
                    f"sillytavern@{RELEASE}"], cwd=root, check=True, timeout=600, capture_output=True)
    return root / "node_modules" / "sillytavern"


@pytest.fixture(scope="module")
def tavern(prod_plan: SwarmPlan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tavern]:
    node = require_tool("node")
    app = _install(tmp_path_factory.mktemp("sillytavern"))
    service = prod_plan.service("sillytavern")
    rendered = next(f.content for f in service.files if f.name == sillytavern.CONFIG)
    assert sillytavern.PLACEHOLDER in rendered
    password = secrets.token_urlsafe(24)
    work = tmp_path_factory.mktemp("sillytavern-run")
    config = work / "config.yaml"
    config.write_text(rendered.replace(sillytavern.PLACEHOLDER, password), encoding="utf-8")
    data = work / "data"
    port = free_port()
    env = {key: value for key, value in service.env.items() if key.startswith("SILLYTAVERN_")}
    proc = start("sillytavern", [node, str(app / "server.js"), "--configPath", str(config), "--dataRoot", str(data),
                                 "--port", str(port), "--listenAddressIPv4", "127.0.0.1", "--enableIPv6", "false"],
                 work, env={**env, "NODE_ENV": "production"})
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(proc, url, START_TIMEOUT_S)  # a 401 is an answer
        assert service.healthcheck is not None
        yield Tavern(proc, url, password, app, data, env, service.healthcheck.test)
    finally:
        proc.stop()


def _healthcheck(tavern: Tavern) -> subprocess.CompletedProcess[str]:
    """The plan's healthcheck command, run as Docker runs it: in the app directory, the container's env."""
    return subprocess.run(tavern.healthcheck, cwd=tavern.app, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **tavern.env, "SILLYTAVERN_DATAROOT": str(tavern.data)})


def test_basic_auth_refuses_no_or_wrong_credentials_and_admits_the_generated_ones(tavern: Tavern) -> None:
    assert httpx.get(tavern.url, timeout=10).status_code == 401
    assert httpx.get(tavern.url, auth=(sillytavern.USERNAME, "not-the-password"), timeout=10).status_code == 401
    answer = httpx.get(tavern.url, auth=(sillytavern.USERNAME, tavern.password), timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert "SillyTavern" in answer.text


def test_the_whitelist_refuses_an_address_outside_it(tavern: Tavern) -> None:
    # 127.0.0.2 is loopback but neither 127.0.0.1, ::1 nor the tailnet: refused before basic auth.
    outside = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=outside, timeout=10) as client:
        answer = client.get(tavern.url, auth=(sillytavern.USERNAME, tavern.password))
    assert answer.status_code == 403


def test_the_healthcheck_follows_the_heartbeat_and_fails_once_the_server_is_gone(tavern: Tavern) -> None:
    assert tavern.env.get(sillytavern.HEARTBEAT_ENV) == str(sillytavern.HEARTBEAT_S)
    assert (tavern.data / "heartbeat.json").exists()
    alive = _healthcheck(tavern)
    assert alive.returncode == 0, alive.stderr
    tavern.proc.stop()
    time.sleep(2 * sillytavern.HEARTBEAT_S + 1)  # the check allows two missed beats
    dead = _healthcheck(tavern)
    assert dead.returncode == 1
    assert "unresponsive" in dead.stderr


def _seed(work: Path, key: str) -> None:
    """The start command's key seeding, through `sh -c` with its exact quoting, in the app's cwd."""
    subprocess.run(["sh", "-c", f'node -e "{sillytavern.SEED_KEY}"'], cwd=work, check=True, timeout=60,
                   env={**os.environ, "LITELLM_KEY": key})


def _secret_store(tavern: Tavern, work: Path, script: str) -> str:
    """Run `script` against SillyTavern's own SecretManager (this release's src/endpoints/secrets.js)
    on `work`'s default user, as its server does at start: migrate, then read."""
    config = work / "config.yaml"
    config.write_text("{}\n", encoding="utf-8")
    root = work / "data" / "default-user"
    program = (
        f"const util = await import({str(tavern.app / 'src' / 'util.js')!r});"
        f"util.setConfigFilePath({str(config)!r});"
        f"const {{ SecretManager }} = await import({str(tavern.app / 'src' / 'endpoints' / 'secrets.js')!r});"
        f"const m = new SecretManager({{ root: {str(root)!r}, backups: {str(work)!r} }});"
        "await m.migrateFlatSecrets();" + script)
    done = subprocess.run([require_tool("node"), "--input-type=module", "-e", program], cwd=tavern.app,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()  # after the migration's own message, if any
    return lines[-1] if lines else ""



def test_the_seeded_litellm_key_is_the_one_sillytavern_reads_on_every_start(
        tavern: Tavern, tmp_path: Path) -> None:
    """SillyTavern keeps keys as lists of entries and converts plain strings only once: a key seeded
    as a string would be read as no key from the second start on (every call to LiteLLM a 401)."""
    read = "console.log(await m.readSecret('api_key_custom', null))"
    _seed(tmp_path, "sk-first")
    assert _secret_store(tavern, tmp_path, read) == "sk-first"
    _seed(tmp_path, "sk-rotated")  # the next start, after SillyTavern marked the file migrated
    assert _secret_store(tavern, tmp_path, read) == "sk-rotated"
    # a key the user added in the UI stays, inactive; SillyTavern still reads the seeded one
    _secret_store(tavern, tmp_path, "await m.writeSecret('api_key_custom', 'sk-mine', 'mine')")
    _seed(tmp_path, "sk-rotated")
    stored = json.loads((tmp_path / "data" / "default-user" / "secrets.json").read_text())
    assert [(e["value"], e["active"]) for e in stored["api_key_custom"]] == [("sk-rotated", True), ("sk-mine", False)]
    assert _secret_store(tavern, tmp_path, read) == "sk-rotated"


def test_the_seed_keeps_an_old_install_s_plain_keys(tavern: Tavern, tmp_path: Path) -> None:
    root = tmp_path / "data" / "default-user"
    root.mkdir(parents=True)
    (root / "secrets.json").write_text(json.dumps({"api_key_openai": "sk-old-openai", "api_key_custom": "sk-old"}))
    _seed(tmp_path, "sk-new")
    values = _secret_store(tavern, tmp_path, "console.log(await m.readSecret('api_key_custom', null) + ' ' + "
                                             "await m.readSecret('api_key_openai', null))")
    assert values == "sk-new sk-old-openai"
