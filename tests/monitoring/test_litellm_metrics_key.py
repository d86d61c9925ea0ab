"""Prometheus reads LiteLLM's /metrics with a LiteLLM key of its own, allowed /metrics only.

LiteLLM answers 401 there without a key once a master key is set. The live test runs the real
chain: the rendered register-keys.py registers the keys with LiteLLM's proxy app (its key table
stood in for, see litellm_key_table.py), the rendered Prometheus entrypoint (busybox sh) writes
the token file, and the real Prometheus scrapes LiteLLM with the rendered job's authorization.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from swarm.monitoring import catalog
from swarm.monitoring.targets import TOKEN_DIR
from swarm.plan import SwarmPlan
from swarm.plan.types import SECRETS_DIR
from swarm.services import litellm, prometheus
from swarm.services.litellm_keys import KEY_PREFIX, METRICS_ONLY, METRICS_READER, SCRIPT_NAME, key_id
from tests.monitoring.support import require_tool, wait_for
from tests.services.loopback import free_port

TABLE = Path(__file__).with_name("litellm_key_table.py")


def _litellm_job(plan: SwarmPlan) -> dict[str, Any]:
    config = yaml.safe_load(plan.files()["prometheus/prometheus.yml"])
    job: dict[str, Any] = next(j for j in config["scrape_configs"] if j["job_name"] == "litellm")
    return job


def test_prometheus_scrapes_litellm_with_its_own_metrics_only_key(prod_plan: SwarmPlan) -> None:
    token_file = _litellm_job(prod_plan)["authorization"]["credentials_file"]
    assert key_id(METRICS_READER) == catalog.LITELLM_METRICS_KEY
    assert catalog.ENDPOINTS["litellm"].bearer_prefix == KEY_PREFIX
    server = prod_plan.service("prometheus")
    assert f"generated:{catalog.LITELLM_METRICS_KEY}" in {s.source for s in server.secret_files}
    assert not any("master" in s.name for s in server.secret_files)  # never LiteLLM's admin key
    # the token file is written on Prometheus's tmpfs from the secret, with LiteLLM's `sk-` prefix
    assert server.entrypoint is not None and token_file.startswith(f"{TOKEN_DIR}/") and TOKEN_DIR in server.tmpfs
    assert f"cat {SECRETS_DIR}/{catalog.LITELLM_METRICS_KEY}" in server.entrypoint[2]
    assert f'"sk-" "$token" > {token_file}' in server.entrypoint[2]
    gateway = prod_plan.service("litellm")
    assert f"generated:{catalog.LITELLM_METRICS_KEY}" in {s.source for s in gateway.secret_files}
    script = next(f.content for f in gateway.files if f.name == SCRIPT_NAME)
    assert f'"{METRICS_READER}": "{SECRETS_DIR}/{catalog.LITELLM_METRICS_KEY}"' in script






def test_real_prometheus_scrapes_litellm_with_the_registered_key(
        prod_plan: SwarmPlan, tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    real_prometheus = require_tool("prometheus")
    shell = shutil.which("busybox")
    gateway, server = prod_plan.service("litellm"), prod_plan.service("prometheus")
    ports = {"litellm": free_port(), "prometheus": free_port()}
    run, tokens = tmp_path / "secrets", tmp_path / "tmpfs"
    run.mkdir(), tokens.mkdir()
    master = secrets.token_urlsafe(24)
    (run / "litellm-master-key").write_text(master + "\n")
    for secret in {s.name for s in (*gateway.secret_files, *server.secret_files)} - {"litellm-master-key"}:
        (run / secret).write_text(secrets.token_hex(24) + "\n")
    with (tmp_path / "litellm.log").open("wb") as log:
        processes.append(subprocess.Popen([sys.executable, str(TABLE), str(ports["litellm"]), f"sk-{master}"],
                                        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                                        stdout=log, stderr=subprocess.STDOUT))
    base = f"http://127.0.0.1:{ports['litellm']}"
    wait_for("LiteLLM", lambda: httpx.get(f"{base}/health/liveliness", timeout=2, trust_env=False).status_code == 200,
          120)

    script = tmp_path / SCRIPT_NAME  # the rendered script, as LiteLLM's container runs it
    script.write_text(next(f.content for f in gateway.files if f.name == SCRIPT_NAME)
                      .replace(f"{SECRETS_DIR}/", f"{run}/").replace(f":{litellm.PORT}", f":{ports['litellm']}"))
    registered = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert registered.returncode == 0, registered.stderr
    assert f"{METRICS_READER} registered" in registered.stderr

    def key(kind: str) -> str:
        return "sk-" + (run / key_id(kind)).read_text().strip()

    def metrics(token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{base}/metrics", headers=headers, timeout=10, trust_env=False,
                         follow_redirects=True).status_code

    assert metrics(None) == 401  # what Prometheus got before it had a key
    assert metrics(key("open-webui")) == 401  # an app's key is not enough: /metrics is not an LLM route
    assert metrics(key(METRICS_READER)) == 200
    assert metrics(key(METRICS_READER).removeprefix("sk-")) == 401  # the secret file alone is no key
    with_key = {"Authorization": f"Bearer {key(METRICS_READER)}"}
    chat = httpx.post(f"{base}/chat/completions", headers=with_key, timeout=10, trust_env=False,
                      json={"model": "mistral-7b", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code in (401, 403), chat.text  # no model, no LLM route
    minted = httpx.post(f"{base}/key/generate", headers=with_key, json={}, timeout=10, trust_env=False)
    assert minted.status_code in (401, 403), minted.text  # no admin route either
    assert METRICS_ONLY["allowed_routes"] == ("/metrics",)

    # Prometheus, started by its rendered entrypoint, on the rendered litellm job
    config = yaml.safe_load(prod_plan.files()["prometheus/prometheus.yml"])
    job = _litellm_job(prod_plan)
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['litellm']}"]
    job["scrape_interval"] = "1s"
    job["authorization"]["credentials_file"] = job["authorization"]["credentials_file"].replace(
        f"{TOKEN_DIR}/", f"{tokens}/")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {**config["global"], "scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [job]}))
    assert server.entrypoint is not None
    # the token directory first: the test's own directories are under /tmp too
    entry = (server.entrypoint[2].replace(f"{TOKEN_DIR}/", f"{tokens}/").replace(f"{SECRETS_DIR}/", f"{run}/")
             .replace(prometheus.BINARY, real_prometheus))
    sh = [shell, "sh"] if shell else ["/bin/sh"]  # the image's shell is busybox
    processes.append(subprocess.Popen(
        [*sh, server.entrypoint[1], entry, server.entrypoint[3], f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    token_file = tokens / catalog.LITELLM_METRICS_KEY
    wait_for("the token file", token_file.exists)
    assert token_file.read_text() == key(METRICS_READER) and token_file.stat().st_mode & 0o077 == 0

    def health() -> dict[str, Any]:
        url = f"http://127.0.0.1:{ports['prometheus']}/api/v1/targets"
        active = httpx.get(url, timeout=2, trust_env=False).json()["data"]["activeTargets"]
        target: dict[str, Any] = next(t for t in active if t["labels"]["job"] == "litellm")
        return target if target["health"] != "unknown" else {}

    target = wait_for("Prometheus's first scrape of LiteLLM", health)
    assert target["health"] == "up", target["lastError"]
