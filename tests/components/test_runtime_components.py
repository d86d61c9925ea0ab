"""swarm-router and swarm-autotuner as the program deploys them (under the mock engine)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from swarm.offline.engine import CapturedResource, CapturedRun, run_program
from swarm.render import rendered_files
from swarm.stack_config import StackConfig, build_spec, read_stack_file
from tests.swarm.conftest import REPO

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def prod() -> StackConfig:
    return read_stack_file(REPO / "Pulumi.prod.yaml")


@pytest.fixture(scope="module")
def run(prod: StackConfig) -> CapturedRun:
    return run_program(prod.values, prod.secure_keys, "prod")


def _container(run: CapturedRun, name: str) -> CapturedResource:
    return next(r for r in run.resources if r.type == CONTAINER and r.name == name)


def _uploads(resource: CapturedResource) -> dict[str, Any]:
    return {upload["file"]: upload.get("content") for upload in resource.inputs["uploads"]}


def test_router_runs_on_the_gateway_with_the_rendered_config(run: CapturedRun, prod: StackConfig) -> None:
    router = _container(run, "oracle-router-container")
    files = rendered_files(build_spec(prod))
    assert _uploads(router)["/etc/swarm/router.yaml"] == files["swarm-router/router.yaml"]
    assert router.inputs["ports"] == [{"internal": 9000.0, "external": 9000.0, "ip": "100.96.197.84",
                                       "protocol": "tcp"}]
    assert router.inputs["command"] == ["swarm-router", "--config", "/etc/swarm/router.yaml"]
    oracle_docker = next(r for r in run.resources if r.name == "oracle-docker")
    assert router.provider == oracle_docker.urn


def test_router_backends_are_the_planned_vllm_deployments(prod: StackConfig) -> None:
    config = yaml.safe_load(rendered_files(build_spec(prod))["swarm-router/router.yaml"])
    backends = {b["name"]: b for b in config["backends"]}
    assert set(backends) == {"starlord-primary", "starlord-secondary", "thanos-backup"}
    assert backends["thanos-backup"] == {"name": "thanos-backup", "url": "http://100.122.12.54:8002",
                                         "models": ["mistral-7b"], "max_concurrency": 8}
    # the model the primary path fails over to is served by two GPUs
    assert sum("mistral-7b" in b["models"] for b in backends.values()) == 2


def test_runtime_keys_are_generated_and_uploaded_as_secrets(run: CapturedRun) -> None:
    router = _container(run, "oracle-router-container")
    uploads = _uploads(router)
    assert set(uploads) >= {"/run/secrets/router-api-key", "/run/secrets/router-admin-key"}
    assert any(path.startswith("uploads") for path in router.secret_paths), router.secret_paths
    assert not any("KEY" in env for env in router.inputs.get("envs") or [])
    passwords = {r.name for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"}
    assert passwords == {"runtime-secrets-router-api-key", "runtime-secrets-router-admin-key"}


@pytest.mark.parametrize(("node", "ip"), [("starlord", "100.72.73.3"), ("thanos", "100.122.12.54")])
def test_autotuner_on_every_gpu_node_sees_gpus_for_nvml_only(run: CapturedRun, node: str, ip: str) -> None:
    tuner = _container(run, f"{node}-autotuner-container")
    assert tuner.inputs["deviceRequests"] == [{"driver": "nvidia", "deviceIds": ["0"], "capabilities": ["utility"]}]
    assert tuner.inputs["readOnly"] is True
    assert tuner.inputs["ports"][0]["ip"] == ip
    config = yaml.safe_load(_uploads(tuner)["/etc/swarm/autotuner.yaml"])
    assert config["router"]["url"] == "http://100.96.197.84:9000"
    assert all(target["vllm_url"].startswith(f"http://{ip}:") for target in config["targets"])


def test_no_autotuner_on_the_gateway(run: CapturedRun) -> None:
    assert not any(r.name.startswith("oracle-autotuner") for r in run.resources)


def test_every_container_is_hardened(run: CapturedRun) -> None:
    containers = [r for r in run.resources if r.type == CONTAINER]
    assert len(containers) == 3
    for container in containers:
        props = container.inputs
        assert props["user"] == "10001:10001"
        assert props["capabilities"] == {"drops": ["ALL"]}
        assert props["securityOpts"] == ["no-new-privileges:true"]
        assert props["logOpts"] == {"max-size": "10m", "max-file": "3"}
        assert props["healthcheck"]["tests"][0] == "CMD"
        assert props["memory"] > 0
        assert props["restart"] == "unless-stopped"


def test_runtime_image_is_built_per_node_for_its_arch(run: CapturedRun) -> None:
    images = {r.name: r for r in run.resources if r.type == "docker:index/image:Image"}
    assert images["oracle-runtime-image"].inputs["build"]["platform"] == "linux/arm64"
    assert images["starlord-runtime-image"].inputs["build"]["platform"] == "linux/amd64"
    assert all(image.inputs["skipPush"] is True for image in images.values())
