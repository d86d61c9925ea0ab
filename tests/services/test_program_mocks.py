"""The inference and gateway services as the real program registers them under Pulumi's mocks
(prod stack), and as the policy pack judges them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from swarm.kinds import LABEL_KIND, LABEL_NODE, LABEL_ROLE, LABEL_SERVICE, ROLE_FILES
from swarm.offline.engine import CapturedResource, CapturedRun
from swarm.offline.offline import EXIT_CLEAN, EXIT_INVALID, offline_plan
from swarm.plan import SwarmPlan
from swarm.policy_config import EXCEPTIONS
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, StackConfig

MY_KINDS = {"vllm", "litellm", "postgres", "postgres-backup", "redis"}
CONTAINER = "docker:index/container:Container"
PINNED = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*@sha256:[0-9a-f]{64}$")


def labels(resource: CapturedResource) -> dict[str, str]:
    return {entry["label"]: entry["value"] for entry in resource.inputs.get("labels", [])}


def containers(run: CapturedRun, kinds: set[str] | None = None, role: str | None = None) -> list[CapturedResource]:
    """The service containers (`role=None`) or their never-started file loaders (`role=ROLE_FILES`)."""
    found = [r for r in run.resources if r.type == CONTAINER and labels(r).get(LABEL_ROLE) == role]
    return [r for r in found if kinds is None or labels(r).get(LABEL_KIND) in kinds]


def test_the_prod_plan_places_every_service_on_its_node(prod_plan: SwarmPlan) -> None:
    placed = {(s.name, s.kind, s.node) for s in prod_plan.services if s.kind in MY_KINDS}
    assert placed == {
        ("starlord-primary", "vllm", "starlord"), ("starlord-secondary", "vllm", "starlord"),
        ("thanos-backup", "vllm", "thanos"), ("litellm", "litellm", "oracle"), ("postgres", "postgres", "oracle"),
        ("postgres-backup", "postgres-backup", "oracle"), ("redis", "redis", "oracle"),
    }


def test_gpu_requests_only_on_gpu_nodes_and_only_the_planned_index(prod_run: CapturedRun,
                                                                     prod_plan: SwarmPlan) -> None:
    gpu_nodes = {name for name, node in prod_plan.spec.nodes.items() if node.gpus}
    vllms = containers(prod_run, {"vllm"})
    assert len(vllms) == len(prod_plan.spec.inference) == 3
    for resource in containers(prod_run):
        requests = resource.inputs.get("deviceRequests") or []
        kind, node = labels(resource).get(LABEL_KIND), labels(resource).get(LABEL_NODE)
        if kind == "vllm":
            deployment = prod_plan.spec.inference[labels(resource)[LABEL_SERVICE]]
            assert requests == [{"driver": "nvidia", "deviceIds": [str(deployment.gpu)], "capabilities": ["gpu"]}]
            assert node == deployment.node
        elif requests:  # NVML agents (autotuner, exporter): the node's GPUs, management only
            assert node in gpu_nodes, resource.name
            assert all(r["capabilities"] == ["utility"] for r in requests), resource.name
        if kind in MY_KINDS - {"vllm"}:
            assert not requests, resource.name


def test_vllm_is_named_after_its_deployment_and_the_router_points_at_it(prod_run: CapturedRun,
                                                                         prod_plan: SwarmPlan) -> None:
    router = prod_plan.service("swarm-router")
    router_yaml = next(f.content for f in router.files)
    for resource in containers(prod_run, {"vllm"}):
        name = labels(resource)[LABEL_SERVICE]
        deployment = prod_plan.spec.inference[name]
        node = prod_plan.spec.nodes[deployment.node]
        assert resource.inputs["name"] == f"ai-swarm-{name}"
        assert f"name: {name}\n" in router_yaml and f"url: http://{node.tailscale_ip}:{deployment.port}" in router_yaml
        assert resource.inputs["ports"] == [{"protocol": "tcp", "ip": node.tailscale_ip, "internal": 8000.0,
                                             "external": float(deployment.port)}]
        cache = [v for v in resource.inputs["volumes"] if v.get("hostPath")]
        assert cache == [{"hostPath": node.model_cache, "containerPath": "/models", "readOnly": True}]
        assert resource.inputs["shmSize"] > 0 and resource.inputs["healthcheck"]["startPeriod"] == "15m0s"
        assert "/health" in " ".join(resource.inputs["healthcheck"]["tests"])
        assert "--api-key" not in resource.inputs["command"]


def test_no_published_port_on_a_wildcard_or_without_an_ip(prod_run: CapturedRun, prod_plan: SwarmPlan) -> None:
    for resource in containers(prod_run):
        node = prod_plan.spec.nodes[labels(resource)[LABEL_NODE]]
        for port in resource.inputs.get("ports") or []:
            assert port.get("ip") == node.tailscale_ip, (resource.name, port)
    private = containers(prod_run, {"postgres", "postgres-backup", "redis"})
    assert len(private) == 3 and all(not r.inputs.get("ports") for r in private)


def test_every_image_is_pinned_by_tag_and_digest(prod_run: CapturedRun) -> None:
    for resource in containers(prod_run, MY_KINDS):
        assert PINNED.match(resource.inputs["image"]), resource.inputs["image"]
    pulled = [r.inputs["name"] for r in prod_run.resources if r.type == "docker:index/remoteImage:RemoteImage"]
    assert pulled and all(PINNED.match(name) for name in pulled)


def test_every_secret_bearing_input_is_a_secret_output(prod_run: CapturedRun) -> None:
    mine, loaders = containers(prod_run, MY_KINDS), containers(prod_run, MY_KINDS, ROLE_FILES)
    assert len(mine) == len(loaders) == 7
    for resource in loaders:
        assert "uploads" in resource.secret_paths, resource.name  # the whole upload list is secret
    for resource in mine:
        assert not resource.inputs.get("uploads")
        envs = " ".join(resource.inputs.get("envs") or [])
        assert OFFLINE_SECRET_PLACEHOLDER not in envs
        assert not re.search(r"(PASSWORD|API_KEY|MASTER_KEY|SECRET)=", envs), envs  # only *_FILE pointers
        text = json.dumps({k: v for k, v in resource.inputs.items() if k != "uploads"})
        assert OFFLINE_SECRET_PLACEHOLDER not in text
    litellm = next(r for r in loaders if labels(r)[LABEL_KIND] == "litellm")
    secret_files = {u["file"] for u in litellm.inputs["uploads"] if u["file"].startswith("/run/secrets/")}
    assert secret_files == {f"/run/secrets/{n}" for n in (
        "litellm-master-key", "router-api-key", "redis-password", "postgres-password",
        "openrouterApiKey", "geminiApiKey", "geminiApiKeyAlt", "anthropicApiKey",
        "litellm-key-open-webui", "litellm-key-pipelines", "litellm-key-sillytavern",
        "litellm-key-gpt-researcher", "litellm-key-prometheus")}  # apps' keys and Prometheus's to register
    generated = {r.name for r in prod_run.resources if r.type == "random:index/randomPassword:RandomPassword"}
    assert {"swarm-secrets-vllm-api-key", "swarm-secrets-postgres-password", "swarm-secrets-redis-password",
            "swarm-secrets-litellm-master-key", "swarm-secrets-litellm-key-prometheus"} <= generated


def test_stateful_volumes_are_protected_and_retained(prod_run: CapturedRun) -> None:
    volumes = {r.name: r for r in prod_run.resources if r.type == "docker:index/volume:Volume"}
    for name in ("postgres-data-volume", "redis-data-volume", "postgres-backup-dumps-volume"):
        assert volumes[name].protect, name
    assert not volumes["litellm-config-volume"].protect


def _values(config: StackConfig) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(json.dumps(dict(config.values)))
    return values


def test_an_amd64_only_image_on_an_arm64_node_is_refused(prod_config: StackConfig) -> None:
    values = _values(prod_config)
    values["ai-swarm:nodes"]["thanos"]["arch"] = "arm64"  # vLLM publishes amd64 only
    result = offline_plan(StackConfig(values, prod_config.secure_keys, "test"), "test")
    assert result.exit_code == EXIT_INVALID
    message = "\n".join(str(issue) for issue in result.issues)
    assert "ai-swarm:inference.thanos-backup" in message
    assert "'thanos-backup' on node 'thanos' (arm64)" in message and "vllm/vllm-openai:v0.11.0@sha256:" in message


def test_postgres_cannot_be_published(prod_config: StackConfig) -> None:
    values = _values(prod_config)
    values["ai-swarm:services"]["postgres"]["port"] = 5432
    result = offline_plan(StackConfig(values, prod_config.secure_keys, "test"), "test")
    assert result.exit_code == EXIT_INVALID
    assert any(issue.path == "ai-swarm:services.postgres.port" for issue in result.issues)


def test_oracle_ram_budget_holds_with_the_gateway(prod_plan: SwarmPlan) -> None:
    oracle = next(b for b in prod_plan.memory if b.node == "oracle")
    assert {"litellm", "postgres", "postgres-backup", "redis"} <= set(oracle.shares)
    assert oracle.fits, oracle
    for node in ("starlord", "thanos"):
        budget = next(b for b in prod_plan.memory if b.node == node)
        assert budget.fits and any(s in budget.shares for s in prod_plan.spec.inference)


@pytest.fixture(scope="module")
def prod_offline(prod_config: StackConfig) -> Any:
    return offline_plan(prod_config, "prod")


def test_the_policy_pack_passes_on_prod(prod_offline: Any) -> None:
    assert prod_offline.exit_code == EXIT_CLEAN
    services = {"litellm", "postgres", "postgres-backup", "redis", "starlord-primary", "starlord-secondary",
                "thanos-backup"}
    names = {f"{s}-container" for s in services} | {f"{s}-files" for s in services}
    mine = [v for v in prod_offline.verdicts if (v.urn or "").rsplit("::", 1)[-1] in names]
    assert all(v.level == "allowed" for v in mine), [(v.policy, v.urn, v.level) for v in mine if v.level != "allowed"]
    assert {v.policy for v in mine} == {"container-non-root-user", "container-read-only-rootfs"}  # litellm only


def test_every_exception_for_these_kinds_has_a_written_reason() -> None:
    mine = [e for e in EXCEPTIONS if e.kind in MY_KINDS]
    assert {(e.policy, e.kind) for e in mine} == {("container-non-root-user", "litellm"),
                                                  ("container-read-only-rootfs", "litellm")}
    assert all(len(e.reason) > 60 and "Prisma" in e.reason for e in mine)
