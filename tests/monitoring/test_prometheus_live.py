"""A real Prometheus (Debian's) on loopback, on a config derived from the rendered one: the router
and vLLM jobs are kept with their labels, their targets rewritten to the real `swarm-router` and
a fake vLLM this test starts, plus one dead vLLM target. It must scrape both, evaluate the
rendered recording rules on what it scraped, and hold TargetDown pending for the dead one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from swarm.monitoring import catalog, rules
from swarm.plan import SwarmPlan
from tests.monitoring.support import require_tool, wait_for

BIN = Path(sys.executable).parent
API_KEY = "sk-monitoring-test-key-000000000000"
MODEL = "m"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port






def _derive(plan: SwarmPlan, ports: dict[str, int], out: Path) -> Path:
    rendered = yaml.safe_load(plan.files()["prometheus/prometheus.yml"])
    jobs = {job["job_name"]: job for job in rendered["scrape_configs"]}
    router, vllm = jobs["swarm-router"], jobs["vllm"]
    router["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['router']}"]
    live = next(g for g in vllm["static_configs"] if g["labels"]["service"] == "starlord-primary")
    dead = next(g for g in vllm["static_configs"] if g["labels"]["service"] == "thanos-backup")
    live["targets"], dead["targets"] = [f"127.0.0.1:{ports['vllm']}"], [f"127.0.0.1:{ports['dead']}"]
    vllm["static_configs"] = [live, dead]
    for job in (router, vllm):
        job["scrape_interval"] = "1s"
    config = {"global": {**rendered["global"], "scrape_interval": "1s", "scrape_timeout": "1s",
                         "evaluation_interval": "1s"},
              "rule_files": rendered["rule_files"], "scrape_configs": [router, vllm]}
    for name in rendered["rule_files"]:
        (out / name).write_text(plan.files()[f"prometheus/{name}"].replace("interval: 30s", "interval: 1s"))
    path = out / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5, trust_env=False).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_real_prometheus_scrapes_the_router_and_evaluates_the_rules(
        prod_plan: SwarmPlan, tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    prometheus = require_tool("prometheus")
    ports = {"router": _free_port(), "vllm": _free_port(), "dead": _free_port(), "prom": _free_port()}

    def spawn(*args: str, env: dict[str, str] | None = None) -> None:
        processes.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    spawn(str(BIN / "swarm-fake-vllm"), "--port", str(ports["vllm"]), "--model", MODEL)
    router_config = tmp_path / "router.yaml"
    router_config.write_text(yaml.safe_dump({
        "listen": {"host": "127.0.0.1", "port": ports["router"]}, "api_key_env": "ROUTER_API_KEY",
        "backends": [{"name": "starlord-primary", "url": f"http://127.0.0.1:{ports['vllm']}", "models": [MODEL]}]}))
    spawn(str(BIN / "swarm-router"), "--config", str(router_config), env={**os.environ, "ROUTER_API_KEY": API_KEY})
    config = _derive(prod_plan, ports, tmp_path)
    check = subprocess.run([require_tool("promtool"), "check", "config", str(config)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    spawn(prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
          f"--web.listen-address=127.0.0.1:{ports['prom']}")
    router = f"http://127.0.0.1:{ports['router']}"
    wait_for("the router", lambda: httpx.get(f"{router}/health", timeout=1, trust_env=False).status_code == 200)

    def chat() -> None:
        reply = httpx.post(f"{router}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                           json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                           timeout=10, trust_env=False)
        assert reply.status_code == 200, reply.text

    chat()
    base = f"http://127.0.0.1:{ports['prom']}"

    def up() -> dict[str, str]:
        targets = httpx.get(f"{base}/api/v1/targets", timeout=2, trust_env=False).json()["data"]["activeTargets"]
        health = {t["labels"]["service"]: t["health"] for t in targets}
        live = health.get("swarm-router") == "up" and health.get("starlord-primary") == "up"
        # the dead target must have been tried once too (until then its health is "unknown")
        return health if live and health.get("thanos-backup", "unknown") != "unknown" else {}

    health = wait_for("both targets up and the dead one scraped", up)
    assert health["thanos-backup"] == "down"
    kv = wait_for("the KV-cache recording rule", lambda: _query(base, "ai_swarm:vllm_kv_cache_usage:ratio"))
    assert kv[0]["metric"] == {"__name__": "ai_swarm:vllm_kv_cache_usage:ratio", "node": "starlord",
                               "service": "starlord-primary", "model_name": MODEL}

    def error_ratio() -> float | None:
        chat()  # traffic between scrapes, so the counters' rate is not 0/0
        result = _query(base, 'ai_swarm:api_error_ratio:rate5m{api="router"}')
        value = float(result[0]["value"][1]) if result else float("nan")
        return None if value != value else value + 1.0  # NaN: not yet; +1 keeps a 0 ratio truthy

    assert wait_for("the router error-ratio rule", error_ratio) == 1.0  # successful requests only, no 5xx
    pending = wait_for("TargetDown on the dead target", lambda: _query(
        base, 'ALERTS{alertname="TargetDown", service="thanos-backup"}'))
    assert pending[0]["metric"]["alertstate"] == "pending"  # `for: 5m` not yet elapsed
    assert not _query(base, 'ALERTS{alertname="TargetDown", service="swarm-router"}')
    names = set(httpx.get(f"{base}/api/v1/label/__name__/values", timeout=5, trust_env=False).json()["data"])
    router_names = {n for n in catalog.EXPORTS["swarm-router"] if not n.endswith(("_sum", "_count"))}
    assert router_names <= names, sorted(router_names - names)  # the catalog matches the real router
    vllm_names = {n for n in names if n.startswith("vllm:")}
    assert vllm_names and vllm_names <= set(catalog.EXPORTS["vllm"]), sorted(vllm_names - set(catalog.EXPORTS["vllm"]))
    assert {r.name for r in rules.records(prod_plan.spec)} & names
