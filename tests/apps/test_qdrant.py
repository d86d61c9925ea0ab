"""Qdrant's adoption in two steps, under Pulumi's mock engine and through the policy pack.

(a) adopt: imported by its 64-hex ID with exactly the inspect-derived inputs, protected,
    retained, nothing added that the provider does not read back, exceptions by reason;
(b) hardened: the ID removed: API key file, read-only root, non-root user, the data where the
    adopted container kept it (protected, retained), no import.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.adopted_container import PROVIDER_BEHAVIOUR
from swarm.adopt import adopt_config_text, adopted_resource_name
from swarm.errors import SpecError
from swarm.offline.offline import EXIT_CLEAN, offline_plan
from swarm.policy_config import ADOPTED_EXCEPTIONS, policy_config
from swarm.stack_config import StackConfig
from tests.apps.helpers import (
    CONTAINER,
    QDRANT_UNPRIVILEGED,
    VOLUME,
    config_of,
    fixture_text,
    plan_of,
    run,
    sample_adoption,
    stack,
)

STARLORD_IP = "100.72.73.3"
NOT_READ_BACK_ON_IMPORT = ("envs", "labels", "ports", "volumes", "networksAdvanced", "uploads", "logOpts")


def _block(with_id: bool = True) -> dict[str, Any]:
    block: dict[str, Any] = yaml.safe_load(adopt_config_text("qdrant", sample_adoption()))["adopt"]
    if not with_id:
        block.pop("container_id")
    return block


def _qdrant(block: dict[str, Any] | bool) -> dict[str, Any]:
    """The qdrant service; in step (b) with the unprivileged image pinned, as the runbook has it."""
    hardened = isinstance(block, dict) and "container_id" not in block
    return {"node": "starlord", "port": 6333, "adopt": block, **({"image": QDRANT_UNPRIVILEGED} if hardened else {})}


@pytest.fixture(scope="module")
def adopt_run(prod_config: StackConfig) -> dict[str, Any]:
    return run(stack(prod_config.values, qdrant=_qdrant(_block())))


@pytest.fixture(scope="module")
def hardened_run(prod_config: StackConfig) -> dict[str, Any]:
    return run(stack(prod_config.values, qdrant=_qdrant(_block(with_id=False))))


def test_step_a_imports_the_running_container_protected_and_retained(adopt_run: dict[str, Any]) -> None:
    raw = json.loads(fixture_text("inspect-qdrant-starlord.json"))[0]
    container = adopt_run[adopted_resource_name("qdrant")]
    assert container.resource.type == CONTAINER
    assert container.import_id == raw["Id"]
    assert container.protect and container.retain_on_delete
    assert container.resource.provider == adopt_run["starlord-docker"].resource.urn
    assert set(container.ignore_changes) == set(PROVIDER_BEHAVIOUR)
    assert not set(container.ignore_changes) & set(container.resource.inputs), "nothing declared is ignored"


def test_step_a_declares_exactly_the_inputs_the_provider_reads_back(adopt_run: dict[str, Any]) -> None:
    raw = json.loads(fixture_text("inspect-qdrant-starlord.json"))[0]
    config, host, check = raw["Config"], raw["HostConfig"], raw["Config"]["Healthcheck"]
    inputs = adopt_run[adopted_resource_name("qdrant")].resource.inputs
    expected = {
        "name": raw["Name"].lstrip("/"), "image": config["Image"], "command": config["Cmd"],
        "workingDir": config["WorkingDir"], "restart": host["RestartPolicy"]["Name"],
        "readOnly": host["ReadonlyRootfs"], "privileged": host["Privileged"],
        "publishAllPorts": host["PublishAllPorts"], "networkMode": host["NetworkMode"],
        "memory": host["Memory"] / 2**20, "memorySwap": host["MemorySwap"], "shmSize": host["ShmSize"] / 2**20,
        "logDriver": host["LogConfig"]["Type"], "init": False, "tty": config["Tty"], "stdinOpen": config["OpenStdin"],
        "healthcheck": {"tests": check["Test"], "interval": "30s", "timeout": "5s", "startPeriod": "1m30s",
                        "startInterval": "0s", "retries": check["Retries"]},
    }
    assert {key: inputs.get(key) for key in expected} == expected
    assert not set(NOT_READ_BACK_ON_IMPORT) & set(inputs), "these are never read back on import: a replace"
    assert set(inputs) <= set(expected) | {"__defaults"}, sorted(set(inputs) - set(expected))


def test_step_a_creates_nothing_beside_the_container(adopt_run: dict[str, Any]) -> None:
    names = set(adopt_run)
    assert not {n for n in names if n.startswith("qdrant-") and n != adopted_resource_name("qdrant")}
    assert not [n for n in names if "qdrant" in n and adopt_run[n].resource.type == VOLUME]
    assert not [n for n in names if n.startswith("starlord-qdrant")], "no image pull for the adopted container"


def test_step_a_passes_the_policy_pack_on_written_exceptions(prod_config: StackConfig) -> None:
    values = stack(prod_config.values, qdrant=_qdrant(_block()))
    result = offline_plan(config_of(values), "test")
    assert result.exit_code == EXIT_CLEAN, [(v.policy, v.urn) for v in result.violations]
    waived = {v.policy for v in result.exceptions if (v.urn or "").endswith("::qdrant-container")}
    # What the sample container (`docker run` defaults, a healthcheck, a restart policy) violates:
    assert waived == {"container-non-root-user", "container-drop-all-capabilities", "container-no-new-privileges",
                      "container-read-only-rootfs", "container-memory-limit", "container-log-rotation",
                      "image-digest-pinned"}
    assert waived <= {policy for policy, _ in ADOPTED_EXCEPTIONS}
    allowed = policy_config(plan_of(values))["container-non-root-user"]["allow"]
    assert allowed == [adopted_resource_name("qdrant")]


def test_the_exceptions_end_with_step_a(prod_config: StackConfig) -> None:
    config = policy_config(plan_of(stack(prod_config.values, qdrant=_qdrant(_block(with_id=False)))))
    assert not any(adopted_resource_name("qdrant") in (entry.get("allow") or []) for entry in config.values())


def test_step_b_is_hardened_with_a_required_api_key_and_no_import(hardened_run: dict[str, Any]) -> None:
    container = hardened_run[adopted_resource_name("qdrant")]
    inputs = container.resource.inputs
    assert container.import_id == "" and not container.protect
    assert inputs["name"] == "ai-swarm-qdrant"
    assert inputs["readOnly"] is True and inputs["user"] == "1000:1000"
    assert inputs["capabilities"]["drops"] == ["ALL"]
    assert inputs["ports"] == [{"internal": 6333.0, "external": 6333.0, "ip": STARLORD_IP, "protocol": "tcp"}]
    loader = hardened_run["qdrant-files"].resource  # ServiceContainer's file delivery (see its module)
    uploads = {u["file"]: u for u in loader.inputs["uploads"]}
    assert set(uploads) == {"/run/secrets/qdrant-api-key"}
    assert any(path.startswith("uploads") for path in loader.secret_paths)
    assert "uploads" not in inputs
    start = " ".join(inputs["entrypoints"] + inputs["command"])
    assert 'QDRANT__SERVICE__API_KEY="$(cat /run/secrets/qdrant-api-key)"' in start and "exec ./entrypoint.sh" in start
    assert not any(env.startswith("QDRANT__SERVICE__API_KEY") for env in inputs["envs"])
    assert "QDRANT_INIT_FILE_PATH=/qdrant/storage/.qdrant-initialized" in inputs["envs"]
    assert hardened_run["swarm-secrets-qdrant-api-key"].resource.type == "random:index/randomPassword:RandomPassword"


def test_step_b_keeps_the_data_where_the_adopted_container_had_it(hardened_run: dict[str, Any]) -> None:
    inputs = hardened_run[adopted_resource_name("qdrant")].resource.inputs
    mounted = {v["containerPath"]: v for v in inputs["volumes"]}
    assert mounted["/qdrant/storage"]["hostPath"] == "/mnt/rag-storage/qdrant"
    snapshots = hardened_run["qdrant-snapshots-volume"]
    assert snapshots.resource.inputs["name"] == "ai-swarm-qdrant-snapshots"
    assert snapshots.protect and snapshots.retain_on_delete


def test_step_b_from_a_named_volume_restores_into_a_new_protected_volume(prod_config: StackConfig) -> None:
    """The old volume is left untouched (re-declaring it would not adopt it; see qdrant._storage)."""
    block = _block(with_id=False)
    block["binds"] = []
    block["inputs"]["mounts"] = [{"target": "/qdrant/storage", "source": "qdrant_storage", "type": "volume"}]
    found = run(stack(prod_config.values, qdrant=_qdrant(block)))
    volumes = {r.resource.inputs["name"]: r for r in found.values() if r.resource.type == VOLUME}
    assert "qdrant_storage" not in volumes
    storage = volumes["ai-swarm-qdrant-storage"]
    assert storage.protect and storage.retain_on_delete
    mounted = {v["containerPath"]: v for v in found["qdrant-container"].resource.inputs["volumes"]}
    assert mounted["/qdrant/storage"]["volumeName"] == "ai-swarm-qdrant-storage"


def test_adoption_pending_leaves_the_running_container_alone(prod_config: StackConfig) -> None:
    values = stack(prod_config.values)
    assert values["ai-swarm:services"]["qdrant"]["adopt"] is True, "prod waits for the operator's adopt block"
    found = run(values)
    assert not [n for n in found if n.startswith("qdrant-")]
    plan = plan_of(values)
    assert plan.service("qdrant").stateful and plan.service("qdrant").node == "starlord"
    assert plan.endpoints["qdrant"].url == f"http://{STARLORD_IP}:6333"


def test_a_fresh_stack_gets_a_protected_named_volume(prod_config: StackConfig) -> None:
    found = run(stack(prod_config.values, qdrant={"node": "starlord", "port": 6333, "image": QDRANT_UNPRIVILEGED}))
    storage = found["qdrant-storage-volume"]
    assert storage.protect and storage.retain_on_delete and not found["qdrant-container"].protect


@pytest.mark.parametrize("container_id", ["4f3c2a9e8b7d", "4F3C" * 16, "g" * 64])
def test_the_import_needs_the_full_64_hex_id(prod_config: StackConfig, container_id: str) -> None:
    block = _block()
    block["container_id"] = container_id
    with pytest.raises(SpecError, match=r"ai-swarm:services\.qdrant\.adopt"):
        plan_of(stack(prod_config.values, qdrant=_qdrant(block)))


def test_only_qdrant_can_be_adopted(prod_config: StackConfig) -> None:
    with pytest.raises(SpecError, match="only an already-running qdrant"):
        plan_of(stack(prod_config.values, searxng={"node": "thanos", "adopt": _block()}))


@pytest.mark.parametrize("hardened", [True, False], ids=["step-b", "fresh-stack"])
def test_the_non_root_container_refuses_the_root_built_image(prod_config: StackConfig, hardened: bool) -> None:
    """Qdrant's standard image is built as root: new volumes at /qdrant/storage and /qdrant/snapshots
    are root-owned and uid 1000 could not write them. The plan says so before anything is deployed."""
    service = _qdrant(_block(with_id=False)) if hardened else {"node": "starlord", "port": 6333}
    service.pop("image", None)
    with pytest.raises(SpecError) as raised:
        plan_of(stack(prod_config.values, qdrant=service))
    assert "ai-swarm:services.qdrant.image" in str(raised.value)
    assert "v1.15.4-unprivileged@sha256:<digest>" in str(raised.value)
    adopted = plan_of(stack(prod_config.values, qdrant=_qdrant(_block())))  # step (a) pulls no image
    assert adopted.service("qdrant").image.tag == "v1.15.4"
