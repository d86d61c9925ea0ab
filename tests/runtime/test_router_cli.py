"""The installed entry point runs with the issue's minimal config shape."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from swarm_runtime.testing.fake_vllm import FakeVllm

from tests.runtime.support import free_port

from .conftest import API_KEY


def minimal_config(tmp_path: Path, port: int, urls: list[str]) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "api_key_env: ROUTER_API_KEY\n"
        "backends:\n"
        f'  - {{name: starlord-primary, url: "{urls[0]}", models: [primary]}}\n'
        f'  - {{name: thanos-backup, url: "{urls[1]}", models: [primary]}}\n')
    return path


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "swarm_runtime.router.cli", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_serves_with_the_minimal_config(tmp_path: Path, fake_factory: Callable[..., FakeVllm]) -> None:
    fakes = [fake_factory(), fake_factory()]
    port = free_port()
    path = minimal_config(tmp_path, port, [f.url for f in fakes])
    proc = run_cli(["--config", str(path)], {"ROUTER_API_KEY": API_KEY})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/health", timeout=0.5, trust_env=False)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "router did not start"
                time.sleep(0.05)
        resp = httpx.post(url + "/v1/chat/completions", trust_env=False, timeout=5,
                          headers={"Authorization": f"Bearer {API_KEY}"},
                          json={"model": "primary", "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200
        assert resp.headers["x-swarm-backend"] in {"starlord-primary", "thanos-backup"}
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def test_cli_check_and_config_errors(tmp_path: Path) -> None:
    path = minimal_config(tmp_path, 9000, ["http://127.0.0.1:1", "http://127.0.0.1:2"])
    ok = subprocess.run([sys.executable, "-m", "swarm_runtime.router.cli", "--config", str(path), "--check"],
                        capture_output=True, text=True, timeout=30, check=False)
    assert ok.returncode == 0 and "config OK: 2 backends" in ok.stdout
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_API_KEY"}
    missing = subprocess.run([sys.executable, "-m", "swarm_runtime.router.cli", "--config", str(path)],
                             capture_output=True, text=True, timeout=30, env=env, check=False)
    assert missing.returncode == 2 and "ROUTER_API_KEY" in missing.stderr and "Traceback" not in missing.stderr
    path.write_text(path.read_text() + "bogus: 1\n")
    bad = subprocess.run([sys.executable, "-m", "swarm_runtime.router.cli", "--config", str(path), "--check"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "bogus" in bad.stderr
