"""Each app's LiteLLM key: the app sends `sk-<secret>`, and LiteLLM's container registers exactly
that key, run for real (the rendered register-keys.py) against a stand-in LiteLLM on loopback.
Prometheus's key is registered the same way, with rights to /metrics only
(tests/monitoring/test_litellm_metrics_key.py runs it against LiteLLM's own auth)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from swarm.plan import SwarmPlan
from swarm.services.litellm_keys import (
    CLIENT_KINDS,
    METRICS_ONLY,
    METRICS_READER,
    SCRIPT_NAME,
    key_expression,
    key_holders,
    key_id,
)

MASTER = "m" * 48


class FakeLiteLLM(ThreadingHTTPServer):
    """Answers liveliness, and /key/generate as LiteLLM does: 200 new, 400 for a key it already has."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keys: dict[str, dict[str, Any]] = {}
        self.authorizations: list[str] = []


class _Handler(BaseHTTPRequestHandler):
    server: FakeLiteLLM

    def do_GET(self) -> None:
        self._reply(200, {"status": "alive"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.authorizations.append(self.headers["Authorization"])
        if self.headers["Authorization"] != f"Bearer sk-{MASTER}":
            self._reply(401, {"error": "invalid master key"})
        elif body["key"] in self.server.keys:
            self._reply(400, {"error": {"message": "Unique constraint failed: key already exists"}})
        else:
            self.server.keys[body["key"]] = body
            self._reply(200, {"key": body["key"]})

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[FakeLiteLLM]:
    server = FakeLiteLLM()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _script(prod_plan: SwarmPlan, secrets: Path, port: int) -> Path:
    litellm = next(s for s in prod_plan.services if s.kind == "litellm")
    text = next(f.content for f in litellm.files if f.name == SCRIPT_NAME)
    script = secrets / SCRIPT_NAME
    script.write_text(text.replace("/run/secrets/", f"{secrets}/").replace(":4000", f":{port}"))
    return script


def _secrets(tmp_path: Path, kinds: tuple[str, ...]) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "litellm-master-key").write_text(MASTER + "\n")
    for kind in kinds:
        (folder / key_id(kind)).write_text(f"{kind}-secret\n")
    return folder


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_litellm_holds_every_placed_apps_key(prod_plan: SwarmPlan) -> None:
    litellm = next(s for s in prod_plan.services if s.kind == "litellm")
    held = {s.name for s in litellm.secret_files}
    placed = {s.kind for s in prod_plan.services} & set(CLIENT_KINDS)
    assert placed, "prod places apps that call LiteLLM"
    assert {key_id(kind) for kind in placed} <= held
    for app in (s for s in prod_plan.services if s.kind in placed):
        assert any(f.source == f"generated:{key_id(app.kind)}" for f in app.secret_files), app.name


def test_apps_send_the_key_with_litellms_prefix(prod_plan: SwarmPlan) -> None:
    for app in (s for s in prod_plan.services if s.kind in CLIENT_KINDS):
        started = " ".join((*(app.entrypoint or ()), *app.command)) + "".join(f.content for f in app.files)
        assert key_expression(app.kind) in started, app.name


def test_the_rendered_script_registers_each_key_once(prod_plan: SwarmPlan, fake: FakeLiteLLM,
                                                     tmp_path: Path) -> None:
    kinds = key_holders(prod_plan.spec)
    assert set(kinds) == ({s.kind for s in prod_plan.services} & set(CLIENT_KINDS)) | {METRICS_READER}
    script = _script(prod_plan, _secrets(tmp_path, kinds), fake.server_address[1])
    first = _run(script)
    assert first.returncode == 0, first.stderr
    assert set(fake.keys) == {f"sk-{kind}-secret" for kind in kinds}
    assert {body["key_alias"] for body in fake.keys.values()} == set(kinds)
    rights = {"allowed_routes", "models"}
    for body in fake.keys.values():  # an app's key keeps LiteLLM's defaults; Prometheus's reads /metrics only
        expected = {k: list(v) for k, v in METRICS_ONLY.items()} if body["key_alias"] == METRICS_READER else {}
        assert {k: v for k, v in body.items() if k in rights} == expected, body["key_alias"]
    again = _run(script)  # a restart: every key exists already, nothing fails
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already registered") == len(kinds)


def test_a_refused_registration_fails_loudly(prod_plan: SwarmPlan, fake: FakeLiteLLM, tmp_path: Path) -> None:
    secrets = _secrets(tmp_path, key_holders(prod_plan.spec))
    (secrets / "litellm-master-key").write_text("wrong\n")
    result = _run(_script(prod_plan, secrets, fake.server_address[1]))
    assert result.returncode == 1
    assert "refused (401)" in result.stderr and fake.keys == {}
