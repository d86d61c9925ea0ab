"""Representative resources, captured from real pulumi_docker / tailscale / random calls.

``hardened_*`` builders satisfy every container rule; tests mutate copies of their props.
OCI resources are schema-shaped dicts (pulumi-oci is not installed on the build machines).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tailscale as tailscale

from policies.local_runner import ResourceSnapshot

from .capture import capture, urn_of

STARLORD_TS_IP = "100.72.73.3"
ORACLE_TS_IP = "100.96.197.84"
LITELLM_IMAGE = "ghcr.io/berriai/litellm:main-v1.77.5-stable@sha256:" + "a" * 64


def _labels(node: str, service: str, kind: str) -> list[docker.ContainerLabelArgs]:
    return [
        docker.ContainerLabelArgs(label="ai-swarm.node", value=node),
        docker.ContainerLabelArgs(label="ai-swarm.service", value=service),
        docker.ContainerLabelArgs(label="ai-swarm.kind", value=kind),
    ]


def _hardened(
    name: str, *, image: pulumi.Input[str], node: str, ip: str, port: int, kind: str, **extra: Any
) -> docker.Container:
    return docker.Container(
        name,
        image=image,
        name=name.removesuffix("-container"),
        user="1000:1000",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
        memory=2048,
        restart="unless-stopped",
        ports=[docker.ContainerPortArgs(internal=port, external=port, ip=ip, protocol="tcp")],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", "curl", "-fsS", f"http://127.0.0.1:{port}/health"],
            interval="30s",
            timeout="5s",
            retries=3,
            start_period="20s",
        ),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        labels=_labels(node, name.removesuffix("-container"), kind),
        network_mode="bridge",
        **extra,
    )


def _program() -> None:
    master_key = random.RandomPassword("litellm-master-key", length=48, special=False)
    vllm_image = docker.RemoteImage("starlord-vllm-image", name="vllm/vllm-openai:v0.11.0", keep_locally=True)
    docker.RemoteImage("oracle-litellm-image", name=LITELLM_IMAGE, keep_locally=True)
    docker.Volume(
        "oracle-postgres-data",
        name="postgres-data",
        labels=[docker.VolumeLabelArgs(label="ai-swarm.node", value="oracle")],
        opts=pulumi.ResourceOptions(protect=True),
    )
    _hardened(
        "oracle-litellm-container",
        image=LITELLM_IMAGE,
        node="oracle",
        ip=ORACLE_TS_IP,
        port=4000,
        kind="gateway",
        envs=[
            "LITELLM_MASTER_KEY_FILE=/run/secrets/litellm-master-key",
            "LITELLM_LOG=INFO",
            "STORE_MODEL_IN_DB=True",
        ],
        uploads=[
            docker.ContainerUploadArgs(
                file="/run/secrets/litellm-master-key", content=master_key.result, permissions="0400"
            )
        ],
    )
    _hardened(
        "starlord-vllm-primary-container",
        image=vllm_image.image_id,
        node="starlord",
        ip=STARLORD_TS_IP,
        port=8000,
        kind="vllm",
        envs=["HF_HOME=/models", "HF_TOKEN_FILE=/run/secrets/hf-token", "TOKENIZERS_PARALLELISM=false"],
        volumes=[docker.ContainerVolumeArgs(host_path="/srv/models", container_path="/models", read_only=True)],
        device_requests=[docker.ContainerDeviceRequestArgs(driver="nvidia", device_ids=["0"], capabilities=["gpu"])],
    )
    tailscale.TailnetKey(
        "oracle-tailnet-key",
        reusable=False,
        ephemeral=False,
        preauthorized=True,
        expiry=7 * 86400,
        tags=["tag:swarm-oracle"],
    )
    tailscale.Acl("tailnet-acl", acl=json.dumps(ACL_DOCUMENT, indent=2))


ACL_DOCUMENT: dict[str, Any] = {
    "tagOwners": {"tag:swarm-oracle": ["autogroup:admin"], "tag:swarm-gpu": ["autogroup:admin"]},
    "grants": [{"src": ["tag:swarm-oracle"], "dst": ["tag:swarm-gpu"], "ip": ["tcp:8000"]}],
    "acls": [{"action": "accept", "src": ["autogroup:admin"], "dst": ["tag:swarm-oracle:4000"]}],
    "tests": [{"src": "tag:swarm-oracle", "accept": ["tag:swarm-gpu:8000"], "deny": ["tag:swarm-gpu:22"]}],
}


@functools.cache
def _captured() -> dict[str, ResourceSnapshot]:
    found = capture(_program)
    # MockResourceArgs carries no resource options: record the protect=True the program sets.
    volume = found["oracle-postgres-data"]
    found[volume.name] = dataclasses.replace(volume, protect=True)
    return found


def captured(name: str, **changes: Any) -> ResourceSnapshot:
    """A fresh copy of a captured resource (props deep-copied), with field changes."""
    snapshot = _captured()[name]
    return dataclasses.replace(snapshot, **{"props": copy.deepcopy(snapshot.props), **changes})


def hardened_container() -> ResourceSnapshot:
    return captured("oracle-litellm-container")


def hardened_vllm() -> ResourceSnapshot:
    return captured("starlord-vllm-primary-container")


def with_props(snapshot: ResourceSnapshot, props: dict[str, Any]) -> ResourceSnapshot:
    return dataclasses.replace(snapshot, props=props)


def schema_shaped(type_token: str, name: str, props: dict[str, Any], **extra: Any) -> ResourceSnapshot:
    return ResourceSnapshot(urn=urn_of(type_token, name), type=type_token, name=name, props=props, **extra)


def oci_instance(**overrides: Any) -> ResourceSnapshot:
    props = {
        "availabilityDomain": "Uocm:EU-FRANKFURT-1-AD-1",
        "compartmentId": "ocid1.compartment.oc1..x",
        "shape": "VM.Standard.A1.Flex",
        "shapeConfig": {"ocpus": 4.0, "memoryInGbs": 24.0},
        "sourceDetails": {
            "sourceType": "image",
            "sourceId": "ocid1.image.oc1..x",
            "bootVolumeSizeInGbs": "200",
        },
        "instanceOptions": {"areLegacyImdsEndpointsDisabled": True},
        "isPvEncryptionInTransitEnabled": True,
        "launchOptions": {"isPvEncryptionInTransitEnabled": True, "networkType": "PARAVIRTUALIZED"},
        "agentConfig": {"isMonitoringDisabled": False, "isManagementDisabled": False},
        "createVnicDetails": {"subnetId": "ocid1.subnet.oc1..x", "assignPublicIp": "true"},
    }
    props.update(overrides)
    return schema_shaped("oci:Core/instance:Instance", "oracle-instance", props)


def oci_rule(source: str, protocol: str = "6", port: int | None = 22) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "source": source,
        "protocol": protocol,
        "sourceType": "CIDR_BLOCK",
        "stateless": False,
    }
    if port is not None and protocol in ("6", "17"):
        rule["tcpOptions" if protocol == "6" else "udpOptions"] = {"min": float(port), "max": float(port)}
    return rule


def oci_security_list(rules: list[dict[str, Any]], default: bool = False, **extra: Any) -> ResourceSnapshot:
    if default:
        return schema_shaped(
            "oci:Core/defaultSecurityList:DefaultSecurityList",
            "oracle-default-list",
            {"manageDefaultResourceId": "ocid1.securitylist.oc1..x", "ingressSecurityRules": rules},
            **extra,
        )
    return schema_shaped(
        "oci:Core/securityList:SecurityList",
        "oracle-security-list",
        {
            "compartmentId": "ocid1.compartment.oc1..x",
            "vcnId": "ocid1.vcn.oc1..x",
            "ingressSecurityRules": rules,
        },
        **extra,
    )


def container(base: ResourceSnapshot | None = None, name: str | None = None, **changes: Any) -> ResourceSnapshot:
    """The hardened container (or ``base``) with props changed; a value of None deletes the prop."""
    snapshot = base or hardened_container()
    props = copy.deepcopy(snapshot.props)
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    if name is not None:
        snapshot = dataclasses.replace(snapshot, name=name, urn=urn_of(snapshot.type, name))
    return dataclasses.replace(snapshot, props=props)


def acl(document: dict[str, Any]) -> ResourceSnapshot:
    return captured("tailnet-acl", props={"acl": json.dumps(document)})


def acl_variant(change: Any) -> ResourceSnapshot:
    document = copy.deepcopy(ACL_DOCUMENT)
    change(document)
    return acl(document)


def tailnet_key(**changes: Any) -> ResourceSnapshot:
    snapshot = captured("oracle-tailnet-key")
    return dataclasses.replace(snapshot, props={**snapshot.props, **changes})
