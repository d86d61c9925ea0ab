"""The gateway path on loopback, from the rendered configs: fake vLLMs -> swarm-router -> LiteLLM.

Used by the end-to-end test and by bench/gateway_path.py. Each process is a real executable
of this checkout's virtualenv (`swarm-fake-vllm`, `swarm-router`, `litellm`) started on
127.0.0.1 with a free port; the configs are the plan's rendered files with only addresses,
secret-file paths and the stateful backends (PostgreSQL, Redis) rewritten for a laptop.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from swarm.plan import SwarmPlan
from swarm.services import litellm, swarm_router
from swarm.services.litellm_config import ROUTER_KEY_ENV

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rendered(plan: SwarmPlan, kind: str, name: str) -> str:
    service = plan.of_kind(kind)[0]
    return next(f.content for f in service.files if f.name == name)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> Proc:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                 env={**os.environ, **(env or {})}, start_new_session=True)
    return Proc(name, popen, log)


def wait_http(proc: Proc, url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout_s}s:\n{proc.tail()}")


@dataclass
class GatewayPath:
    """Everything started for one run; `stop()` ends it all."""

    workdir: Path
    vllm_ports: dict[str, int] = field(default_factory=dict)
    vllms: dict[str, Proc] = field(default_factory=dict)
    router: Proc | None = None
    router_port: int = 0
    router_key: str = ""
    vllm_key: str | None = None
    """The vLLMs' API key, when the rendered router config sends one (api_key_env / api_key_file)."""
    gateway: Proc | None = None
    gateway_port: int = 0
    master_key: str = ""
    litellm_config: dict[str, Any] = field(default_factory=dict)

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def vllm_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.vllm_ports[name]}"

    def stop(self) -> None:
        for proc in (self.gateway, self.router, *self.vllms.values()):
            if proc is not None:
                proc.stop()


def _backends(plan: SwarmPlan) -> list[dict[str, Any]]:
    config: dict[str, Any] = yaml.safe_load(rendered(plan, swarm_router.KIND, swarm_router.CONFIG_NAME))
    return list(config["backends"])


def start_vllms(plan: SwarmPlan, path: GatewayPath, ttft_s: float = 0.01, per_token_s: float = 0.0,
                tokens: int = 4) -> None:
    # Like the real ones, the fakes require a key as soon as the router is configured to send one.
    if any("api_key_env" in b or "api_key_file" in b for b in _backends(plan)):
        path.vllm_key = secrets.token_hex(24)
    for name, deployment in plan.spec.inference.items():
        port = free_port()
        path.vllm_ports[name] = port
        key = ["--api-key", path.vllm_key] if path.vllm_key else []
        path.vllms[name] = start(f"vllm-{name}", [
            str(BIN / "swarm-fake-vllm"), "--port", str(port), "--model", deployment.model,
            "--ttft", str(ttft_s), "--per-token", str(per_token_s), "--tokens", str(tokens), *key], path.workdir)
    for name, proc in path.vllms.items():
        wait_http(proc, f"{path.vllm_url(name)}/health", 30)


def router_config(plan: SwarmPlan, path: GatewayPath) -> dict[str, Any]:
    """The rendered router config with loopback addresses and key files in the work dir."""
    config: dict[str, Any] = yaml.safe_load(rendered(plan, swarm_router.KIND, swarm_router.CONFIG_NAME))
    path.router_key = secrets.token_hex(24)
    key_file, admin_file = path.workdir / "router-api-key", path.workdir / "router-admin-key"
    key_file.write_text(path.router_key)
    admin_file.write_text(secrets.token_hex(24))
    config["listen"] = {"host": "127.0.0.1", "port": path.router_port}
    config["api_key_file"], config["admin_key_file"] = str(key_file), str(admin_file)
    for backend in config["backends"]:
        backend["url"] = path.vllm_url(backend["name"])
        if "api_key_file" in backend and path.vllm_key:
            (path.workdir / "vllm-api-key").write_text(path.vllm_key)
            backend["api_key_file"] = str(path.workdir / "vllm-api-key")
    return config


def start_router(plan: SwarmPlan, path: GatewayPath) -> None:
    path.router_port = free_port()
    config_file = path.workdir / "router.yaml"
    config = router_config(plan, path)
    config_file.write_text(yaml.safe_dump(config))
    env = {b["api_key_env"]: path.vllm_key for b in config["backends"] if "api_key_env" in b and path.vllm_key}
    path.router = start("swarm-router", [str(BIN / "swarm-router"), "--config", str(config_file)], path.workdir,
                        env)
    wait_http(path.router, f"{path.router_url}/health", 30)


def gateway_config(plan: SwarmPlan, path: GatewayPath) -> dict[str, Any]:
    """The rendered LiteLLM config without its database and Redis (no such servers here), with
    the router on loopback. Everything else (models, fallbacks, cascade, budgets) is as rendered."""
    config: dict[str, Any] = yaml.safe_load(rendered(plan, litellm.KIND, litellm.CONFIG_NAME))
    for entry in config["model_list"]:
        params = entry["litellm_params"]
        if "api_base" in params:
            params["api_base"] = f"{path.router_url}/v1"
    config["general_settings"].pop("database_url")
    settings = config["litellm_settings"]
    settings.pop("cache"), settings.pop("cache_params")
    for key in ("redis_host", "redis_port", "redis_password"):
        config["router_settings"].pop(key)
    return config


def start_gateway(plan: SwarmPlan, path: GatewayPath, workers: int = 1, timeout_s: float = 120) -> None:
    path.gateway_port = free_port()
    path.master_key = "sk-" + secrets.token_hex(24)
    path.litellm_config = gateway_config(plan, path)
    config_file = path.workdir / "litellm.yaml"
    config_file.write_text(yaml.safe_dump(path.litellm_config))
    env = {"LITELLM_MASTER_KEY": path.master_key, ROUTER_KEY_ENV: path.router_key,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "NO_DOCS": "True",
           "DISABLE_SCHEMA_UPDATE": "True"}
    # Hosted providers get syntactically valid dummies; no test request ever reaches them.
    for entry in config_file_keys(path.litellm_config):
        env.setdefault(entry, "offline-dummy-" + entry.lower())
    path.gateway = start("litellm", [str(BIN / "litellm"), "--config", str(config_file), "--host", "127.0.0.1",
                                     "--port", str(path.gateway_port), "--num_workers", str(workers)],
                         path.workdir, env)
    wait_http(path.gateway, f"{path.gateway_url}/health/liveliness", timeout_s)


def config_file_keys(config: dict[str, Any]) -> list[str]:
    """Environment variables the model list references (`os.environ/NAME`)."""
    names = [str(e["litellm_params"].get("api_key", "")) for e in config["model_list"]]
    return sorted({n.removeprefix("os.environ/") for n in names if n.startswith("os.environ/")} - {ROUTER_KEY_ENV})


@contextlib.contextmanager
def gateway_path(plan: SwarmPlan, workdir: Path, gateway_workers: int = 1, **fake: Any) -> Iterator[GatewayPath]:
    path = GatewayPath(workdir=workdir)
    try:
        start_vllms(plan, path, **fake)
        start_router(plan, path)
        start_gateway(plan, path, workers=gateway_workers)
        yield path
    finally:
        path.stop()
