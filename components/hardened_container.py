"""A container with the policy pack's hardening applied by default.

Every service component describes *what* it runs in a `ContainerSpec`; this module decides
*how*: non-root, all capabilities dropped, no-new-privileges, read-only root with a tmpfs,
ports bound to the node's Tailscale address, memory limit, restart policy, healthcheck,
rotated logs, secrets as files under /run/secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.node_runtime import NodeRuntime


@dataclass(frozen=True)
class PublishedPort:
    internal: int
    external: int
    host_ip: str


@dataclass(frozen=True)
class ContainerSpec:
    service: str
    kind: str
    node: str
    image: pulumi.Input[str]
    command: tuple[str, ...]
    healthcheck: tuple[str, ...]
    memory_mb: int
    ports: tuple[PublishedPort, ...] = ()
    files: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_files: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    gpu_capabilities: tuple[str, ...] = ()
    gpu_ids: tuple[str, ...] = ()
    user: str = "10001:10001"


def hardened_container(name: str, spec: ContainerSpec, runtime: NodeRuntime,
                       parent: pulumi.Resource) -> docker.Container:
    uploads = [docker.ContainerUploadArgs(file=path, content=content) for path, content in spec.files.items()]
    uploads += [docker.ContainerUploadArgs(file=path, content=content)
                for path, content in spec.secret_files.items()]
    device_requests = None
    if spec.gpu_capabilities:
        device_requests = [docker.ContainerDeviceRequestArgs(
            driver="nvidia", device_ids=list(spec.gpu_ids), capabilities=list(spec.gpu_capabilities))]
    return docker.Container(
        name,
        name=f"ai-swarm-{spec.service}",
        image=spec.image,
        command=list(spec.command),
        user=spec.user,
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        memory=spec.memory_mb,
        restart="unless-stopped",
        ports=[docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.host_ip, protocol="tcp")
               for p in spec.ports],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=runtime.network.name,
                                                                aliases=[spec.service])],
        healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", *spec.healthcheck], interval="15s",
                                                    timeout="5s", retries=3, start_period="20s"),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        uploads=uploads,
        device_requests=device_requests,
        labels=[docker.ContainerLabelArgs(label=label, value=value) for label, value in (
            ("ai-swarm.node", spec.node), ("ai-swarm.service", spec.service), ("ai-swarm.kind", spec.kind))],
        opts=pulumi.ResourceOptions(parent=parent, provider=runtime.provider,
                                    additional_secret_outputs=["uploads"] if spec.secret_files else None),
    )


def http_healthcheck(port: int, path: str = "/health") -> tuple[str, ...]:
    """A healthcheck that needs only the image's Python (no curl in slim images)."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"
    return ("python", "-c", probe)
