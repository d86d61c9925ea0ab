"""For every policy of the pack: resources that violate it, resources that pass it.

``CASES[name] = (bad, good)``; each is a function returning the resources to run over, and
the first resource of ``bad`` is the one expected to be reported (and allow-listed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from policies.local_runner import ResourceSnapshot

from . import fixtures as f

Case = tuple[Callable[[], list[ResourceSnapshot]], Callable[[], list[ResourceSnapshot]]]
VCN = "oci:Core/vcn:Vcn"


def _one(build: Callable[[], ResourceSnapshot]) -> Callable[[], list[ResourceSnapshot]]:
    return lambda: [build()]


def _vcn() -> ResourceSnapshot:
    return f.schema_shaped(VCN, "oracle-vcn", {"cidrBlocks": ["10.0.0.0/16"], "compartmentId": "ocid1..x"})


def _managed_default_list() -> list[ResourceSnapshot]:
    vcn = _vcn()
    return [
        vcn,
        f.oci_security_list(
            [],
            default=True,
            dependencies=[vcn.urn],
            property_dependencies={"manageDefaultResourceId": [vcn.urn]},
        ),
    ]


def _duplicate_port() -> list[ResourceSnapshot]:
    return [f.container(name="oracle-litellm-copy-container"), f.hardened_container()]


def _secret_env() -> list[ResourceSnapshot]:
    password = f.captured("litellm-master-key")
    return [replace(f.hardened_container(), property_dependencies={"envs": [password.urn]}), password]


def _secret_upload() -> list[ResourceSnapshot]:
    password = f.captured("litellm-master-key")
    return [replace(f.hardened_container(), property_dependencies={"uploads": [password.urn]}), password]


CASES: dict[str, Case] = {
    "container-no-privileged": (_one(lambda: f.container(privileged=True)), _one(f.hardened_container)),
    "container-non-root-user": (_one(lambda: f.container(user=None)), _one(f.hardened_container)),
    "container-drop-all-capabilities": (
        _one(lambda: f.container(capabilities={"drops": ["NET_RAW"]})),
        _one(f.hardened_container),
    ),
    "container-no-dangerous-capabilities": (
        _one(lambda: f.container(capabilities={"drops": ["ALL"], "adds": ["NET_ADMIN"]})),
        _one(lambda: f.container(capabilities={"drops": ["ALL"], "adds": ["NET_BIND_SERVICE"]})),
    ),
    "container-no-new-privileges": (
        _one(lambda: f.container(securityOpts=["label=type:container_t"])),
        _one(f.hardened_container),
    ),
    "container-no-unconfined-profiles": (
        _one(lambda: f.container(securityOpts=["no-new-privileges:true", "apparmor:unconfined"])),
        _one(f.hardened_container),
    ),
    "container-read-only-rootfs": (_one(lambda: f.container(readOnly=False)), _one(f.hardened_container)),
    "container-no-host-namespaces": (_one(lambda: f.container(pidMode="host")), _one(f.hardened_container)),
    "container-no-docker-socket": (
        _one(lambda: f.container(mounts=[{"type": "bind", "source": "/run/docker.sock", "target": "/d.sock"}])),
        _one(f.hardened_container),
    ),
    "container-no-sensitive-host-mounts": (
        _one(lambda: f.container(volumes=[{"hostPath": "/proc", "containerPath": "/host/proc", "readOnly": True}])),
        _one(f.hardened_vllm),
    ),
    "container-ports-bound-to-ip": (
        _one(lambda: f.container(ports=[{"internal": 4000.0, "external": 4000.0, "protocol": "tcp"}])),
        _one(f.hardened_container),
    ),
    "image-tag-pinned": (
        _one(lambda: f.captured("starlord-vllm-image", props={"name": "vllm/vllm-openai:latest"})),
        _one(lambda: f.captured("starlord-vllm-image")),
    ),
    "image-digest-pinned": (
        _one(lambda: f.captured("starlord-vllm-image")),
        _one(lambda: f.captured("oracle-litellm-image")),
    ),
    "container-memory-limit": (_one(lambda: f.container(memory=None)), _one(f.hardened_container)),
    "container-restart-policy": (_one(lambda: f.container(restart="no")), _one(f.hardened_container)),
    "container-healthcheck": (_one(lambda: f.container(healthcheck=None)), _one(f.hardened_container)),
    "container-log-rotation": (
        _one(lambda: f.container(logOpts={"max-size": "10m"})),
        _one(lambda: f.container(logDriver="local", logOpts=None)),
    ),
    "container-no-plaintext-secrets": (
        _one(lambda: f.container(envs=["POSTGRES_PASSWORD=hunter2"])),
        _one(f.hardened_vllm),
    ),
    "gpu-device-inventory": (
        _one(
            lambda: f.container(
                f.hardened_vllm(),
                deviceRequests=[{"driver": "nvidia", "deviceIds": ["1"], "capabilities": ["gpu"]}],
            )
        ),
        _one(f.hardened_vllm),
    ),
    "vllm-requests-gpu": (
        _one(lambda: f.container(f.hardened_vllm(), deviceRequests=None)),
        _one(f.hardened_vllm),
    ),
    "oci-no-public-ingress": (
        _one(lambda: f.oci_security_list([f.oci_rule("0.0.0.0/0")])),
        _one(lambda: f.oci_security_list([f.oci_rule("100.64.0.0/10")])),
    ),
    "oci-default-security-list-managed": (lambda: [_vcn()], _managed_default_list),
    "oci-legacy-imds-disabled": (
        _one(lambda: f.oci_instance(instanceOptions={"areLegacyImdsEndpointsDisabled": False})),
        _one(f.oci_instance),
    ),
    "oci-in-transit-encryption": (
        _one(lambda: f.oci_instance(isPvEncryptionInTransitEnabled=False, launchOptions={})),
        _one(lambda: f.oci_instance(isPvEncryptionInTransitEnabled=None)),
    ),
    "oci-monitoring-agent": (
        _one(lambda: f.oci_instance(agentConfig={"isMonitoringDisabled": True})),
        _one(f.oci_instance),
    ),
    "oci-always-free-limits": (
        _one(lambda: f.oci_instance(shapeConfig={"ocpus": 6.0, "memoryInGbs": 24.0})),
        _one(f.oci_instance),
    ),
    "tailscale-acl-no-allow-all": (
        _one(lambda: f.acl_variant(lambda d: d["acls"].append({"action": "accept", "src": ["*"], "dst": ["*:*"]}))),
        _one(lambda: f.captured("tailnet-acl")),
    ),
    "tailscale-acl-tags-owned": (
        _one(lambda: f.acl_variant(lambda d: d["tagOwners"].pop("tag:swarm-gpu"))),
        _one(lambda: f.captured("tailnet-acl")),
    ),
    "tailscale-acl-tests": (
        _one(lambda: f.acl_variant(lambda d: d["tests"][0].pop("deny"))),
        _one(lambda: f.captured("tailnet-acl")),
    ),
    "tailscale-key-tagged": (_one(lambda: f.tailnet_key(tags=[])), _one(f.tailnet_key)),
    "tailscale-key-not-reusable": (
        _one(lambda: f.tailnet_key(reusable=True)),
        _one(lambda: f.tailnet_key(reusable=True, ephemeral=True)),
    ),
    "tailscale-key-expiry": (_one(lambda: f.tailnet_key(expiry=365.0 * 86400)), _one(f.tailnet_key)),
    "tailscale-key-tags-owned": (
        lambda: [f.tailnet_key(tags=["tag:stranger"]), f.captured("tailnet-acl")],
        lambda: [f.tailnet_key(), f.captured("tailnet-acl")],
    ),
    "stateful-volumes-protected": (
        _one(lambda: f.captured("oracle-postgres-data", protect=False)),
        _one(lambda: f.captured("oracle-postgres-data")),
    ),
    "unique-host-ports": (_duplicate_port, lambda: [f.hardened_container(), f.hardened_vllm()]),
    "container-secrets-not-in-env": (_secret_env, _secret_upload),
}
