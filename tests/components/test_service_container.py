"""The generic ServiceContainer as the program deploys it (under the mock engine)."""

from __future__ import annotations

from typing import Any

import pytest

from components.service_container import FILE_MODE
from swarm.offline.engine import CapturedResource, CapturedRun
from swarm.plan import ServicePlan, SwarmPlan
from swarm.policy_config import exception_reason
from swarm.provider_readback import go_duration, nano_cpus
from tests.provider_create import parse_cpus, parse_duration

ADOPTING = {"qdrant"}  # prod adopts the running Qdrant: an AdoptedContainer, not a ServiceContainer (tests/apps)

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


@pytest.fixture
def run(prod_run: CapturedRun) -> CapturedRun:
    return prod_run


@pytest.fixture
def plan(prod_plan: SwarmPlan) -> SwarmPlan:
    return prod_plan


def _container(run: CapturedRun, service: str) -> CapturedResource:
    return next(r for r in run.resources if r.type == CONTAINER and r.name == f"{service}-container")


def _loader(run: CapturedRun, service: str) -> CapturedResource:
    return next(r for r in run.resources if r.type == CONTAINER and r.name == f"{service}-files")


def _uploads(resource: CapturedResource) -> dict[str, dict[str, Any]]:
    return {upload["file"]: upload for upload in resource.inputs.get("uploads") or []}


def _delivered(plan: SwarmPlan) -> list[ServicePlan]:
    return [s for s in plan.services if (s.files or s.secret_files) and s.name not in ADOPTING]


def test_every_file_a_container_receives_equals_its_render_twin(run: CapturedRun, plan: SwarmPlan) -> None:
    rendered = plan.files()
    checked = 0
    for service in _delivered(plan):
        uploads = _uploads(_loader(run, service.name))
        for planned in service.files:
            assert uploads[service.file_path(planned)]["content"] == rendered[planned.render_path]
            checked += 1
    assert checked >= 3


def test_files_go_through_a_loader_that_never_starts(run: CapturedRun, plan: SwarmPlan) -> None:
    for service in _delivered(plan):
        container, loader = _container(run, service.name), _loader(run, service.name)
        assert not container.inputs.get("uploads"), "the provider copies to '/': a read-only root refuses it"
        assert loader.inputs["start"] is False and loader.inputs["mustRun"] is False
        assert loader.inputs["readOnly"] is False and loader.inputs["networkMode"] == "none"
        assert loader.inputs["image"] == container.inputs["image"]
        loaded = {v["containerPath"]: v for v in loader.inputs["volumes"]}
        mounted = {v["containerPath"]: v for v in container.inputs.get("volumes") or []}
        for path in _uploads(loader):
            directory = max((d for d in loaded if path.startswith(d + "/")), key=len)
            assert not loaded[directory].get("readOnly"), "the engine refuses uploads into read-only volumes"
            assert mounted[directory]["readOnly"] is True, "the service cannot change its own config"
            assert mounted[directory]["volumeName"] == loaded[directory]["volumeName"]
        labels = {entry["label"]: entry["value"] for entry in container.inputs["labels"]}
        assert labels["ai-swarm.files"] == f"{service.name}-files-id", "new files replace the service container"


def test_uploads_are_readable_by_the_container_group_only(run: CapturedRun, plan: SwarmPlan) -> None:
    for service in _delivered(plan):
        for upload in _uploads(_loader(run, service.name)).values():
            assert (upload["owner"], upload["group"], upload["permissions"]) == ("0", service.gid, FILE_MODE)


def test_generated_keys_are_secret_outputs_and_never_env(run: CapturedRun) -> None:
    loader = _loader(run, "swarm-router")
    uploads = _uploads(loader)
    assert set(uploads) >= {"/run/secrets/router-api-key", "/run/secrets/router-admin-key"}
    assert any(path.startswith("uploads") for path in loader.secret_paths), loader.secret_paths
    assert not any("KEY" in env for env in _container(run, "swarm-router").inputs.get("envs") or [])
    passwords = {r.name for r in run.resources if r.type == "random:index/randomPassword:RandomPassword"}
    assert {"swarm-secrets-router-api-key", "swarm-secrets-router-admin-key"} <= passwords


def test_router_runs_on_the_gateway_with_its_port_on_the_tailnet(run: CapturedRun) -> None:
    router = _container(run, "swarm-router")
    assert router.inputs["ports"] == [{"internal": 9000.0, "external": 9000.0, "ip": "100.96.197.84",
                                       "protocol": "tcp"}]
    assert router.inputs["command"] == ["swarm-router", "--config", "/etc/swarm/router.yaml"]
    oracle_docker = next(r for r in run.resources if r.name == "oracle-docker")
    assert router.provider == oracle_docker.urn


@pytest.mark.parametrize(("node", "ip"), [("starlord", "100.72.73.3"), ("thanos", "100.122.12.54")])
def test_autotuner_on_every_gpu_node_sees_gpus_for_nvml_only(run: CapturedRun, node: str, ip: str) -> None:
    tuner = _container(run, f"swarm-autotuner-{node}")
    assert tuner.inputs["deviceRequests"] == [{"driver": "nvidia", "deviceIds": ["0"], "capabilities": ["utility"]}]
    assert tuner.inputs["ports"][0]["ip"] == ip


def test_no_autotuner_on_the_gateway(plan: SwarmPlan) -> None:
    assert not [s for s in plan.on_node("oracle") if s.kind == "swarm-autotuner"]


def test_every_container_is_hardened(run: CapturedRun, plan: SwarmPlan) -> None:
    for service in (s for s in plan.services if s.name not in ADOPTING):
        props = _container(run, service.name).inputs
        assert props["user"] == service.user
        assert service.uid != "0" or exception_reason("container-non-root-user", service.kind), service.name
        assert props["capabilities"]["drops"] == ["ALL"]
        assert props["securityOpts"] == ["no-new-privileges:true"]
        assert props["logOpts"] == {"max-size": "10m", "max-file": "3",
                                    "labels": "ai-swarm.node,ai-swarm.service,ai-swarm.kind"}
        assert props["healthcheck"]["tests"][0] == "CMD"
        assert props["memory"] == service.memory_mb > 0
        assert props["restart"] == "unless-stopped"


def test_generated_file_volumes_are_labelled_and_data_volumes_protected(run: CapturedRun) -> None:
    for volume in (r for r in run.resources if r.type == VOLUME):
        labels = {entry["label"]: entry["value"] for entry in volume.inputs["labels"]}
        role = labels["ai-swarm.volume-role"]
        assert role in {"generated", "data"}
        assert volume.protect == (role == "data"), volume.name


def test_runtime_image_is_built_per_node_with_relative_paths_and_run_by_digest(run: CapturedRun) -> None:
    images = {r.name: r for r in run.resources if r.type == "docker:index/image:Image"}
    assert images["oracle-swarm-runtime-0-1-0-image"].inputs["build"]["platform"] == "linux/arm64"
    assert images["starlord-swarm-runtime-0-1-0-image"].inputs["build"]["platform"] == "linux/amd64"
    contexts = {"swarm-runtime": "runtime", "gpt-researcher": "images/gpt-researcher"}
    for name, image in images.items():
        context = next(path for key, path in contexts.items() if key in name)
        assert image.inputs["skipPush"] is True
        assert image.inputs["build"]["context"] == context  # relative: state never holds a checkout's path
        assert image.inputs["build"]["dockerfile"] == f"{context}/Dockerfile"
    assert {name for name in images if "gpt-researcher" in name} == {"thanos-gpt-researcher-3-5-1-image"}
    assert images["thanos-gpt-researcher-3-5-1-image"].inputs["build"]["platform"] == "linux/amd64"
    for service in ("swarm-router", "gpt-researcher"):
        # the digest: a rebuild changes it and rolls the container
        assert "@sha256:" in _container(run, service).inputs["image"], service


def test_inputs_are_spelled_as_the_provider_reads_them_back(run: CapturedRun) -> None:
    """After create and on every refresh the provider's read fills the state from `docker inspect`
    (swarm.provider_readback): another spelling is a diff on every preview, a replacement for `cpus`."""
    containers = [r for r in run.resources if r.type == CONTAINER]
    assert len(containers) > 20
    for resource in containers:
        inputs, name = resource.inputs, resource.name
        if inputs.get("cpus") is not None:
            assert inputs["cpus"] == nano_cpus(parse_cpus(inputs["cpus"])), name
        for key in ("interval", "timeout", "startPeriod"):
            if (value := (inputs.get("healthcheck") or {}).get(key)) is not None:
                assert value == go_duration(parse_duration(value)), (name, key)
        if inputs.get("memory") is not None:
            assert inputs.get("memorySwap") == inputs["memory"], f"{name}: the engine stores 2 x memory when unset"


def test_inputs_the_provider_cannot_update_replace_the_container(run: CapturedRun, plan: SwarmPlan) -> None:
    for service in plan.services:
        if service.name not in ADOPTING:
            assert set(_container(run, service.name).replace_on_changes) >= {"healthcheck", "tmpfs"}, service.name
