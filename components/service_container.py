"""The one generic component: a `ServicePlan` turned into Docker resources on its node.

How files reach a container whose root filesystem is read-only: the provider creates the
container, copies every upload through the engine's archive API, then starts it, and the
engine refuses to extract into a read-only root unless the destination is a mounted volume.
So each container with files gets a volume at its `config_dir`, and one with credentials a
volume at `/run/secrets`; uploads land in those volumes, owned by root and readable by the
container's group only (0440). Secrets come from secret Outputs and stay secret in state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.node_runtime import NodeRuntime
from swarm.kinds import (
    LABEL_KIND,
    LABEL_NODE,
    LABEL_SERVICE,
    LABEL_VOLUME_ROLE,
    TYPE_SERVICE,
    VOLUME_ROLE_DATA,
    VOLUME_ROLE_GENERATED,
)
from swarm.plan.types import SECRETS_DIR, Mount, ServicePlan, secret_path

FILE_MODE = "0440"


@dataclass(frozen=True)
class ServiceContainerArgs:
    plan: ServicePlan
    runtime: NodeRuntime
    image: pulumi.Input[str]
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Secret values by `SecretFile.source` (generated:<id> or config:<key>)."""
    import_id: str | None = None
    """Adopt a running container (its full 64-hex ID) instead of creating one."""


class ServiceContainer(pulumi.ComponentResource):
    container: docker.Container
    volumes: dict[str, docker.Volume]

    def __init__(self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_SERVICE, name, None, opts)
        plan, runtime = args.plan, args.runtime
        self.volumes = {}
        mounts = list(plan.mounts)
        if plan.files:
            mounts.append(Mount(target=plan.config_dir, volume=f"{plan.container_name}-config"))
        if plan.secret_files:
            mounts.append(Mount(target=SECRETS_DIR, volume=f"{plan.container_name}-secrets"))
        for mount in mounts:
            if mount.volume is not None:
                self.volumes[mount.volume] = self._volume(name, plan, mount, runtime)
        self.container = docker.Container(
            f"{name}-container",
            _container_args(plan, runtime, args, mounts),
            opts=pulumi.ResourceOptions(
                parent=self, provider=runtime.provider, depends_on=list(self.volumes.values()),
                additional_secret_outputs=["uploads"] if plan.secret_files else None,
                protect=plan.stateful, retain_on_delete=plan.stateful, import_=args.import_id,
            ),
        )
        self.register_outputs({"container": self.container.name})

    def _volume(self, name: str, plan: ServicePlan, mount: Mount, runtime: NodeRuntime) -> docker.Volume:
        assert mount.volume is not None
        return docker.Volume(
            f"{name}-{mount.volume.removeprefix(plan.container_name + '-')}-volume",
            name=mount.volume,
            labels=[docker.VolumeLabelArgs(label=label, value=value) for label, value in (
                *_labels(plan), (LABEL_VOLUME_ROLE, VOLUME_ROLE_DATA if mount.stateful else VOLUME_ROLE_GENERATED))],
            opts=pulumi.ResourceOptions(parent=self, provider=runtime.provider,
                                        protect=mount.stateful, retain_on_delete=mount.stateful),
        )


def _labels(plan: ServicePlan) -> tuple[tuple[str, str], ...]:
    return ((LABEL_NODE, plan.node), (LABEL_SERVICE, plan.name), (LABEL_KIND, plan.kind))


def _uploads(plan: ServicePlan, secrets: Mapping[str, pulumi.Output[str]]) -> list[docker.ContainerUploadArgs]:
    def upload(path: str, content: pulumi.Input[str]) -> docker.ContainerUploadArgs:
        return docker.ContainerUploadArgs(file=path, content=content, owner="0", group=plan.gid,
                                          permissions=FILE_MODE)

    return [*(upload(plan.file_path(f), f.content) for f in plan.files),
            *(upload(secret_path(s.name), secrets[s.source]) for s in plan.secret_files)]


def _container_args(plan: ServicePlan, runtime: NodeRuntime, args: ServiceContainerArgs,
                    mounts: list[Mount]) -> docker.ContainerArgs:
    health = plan.healthcheck
    gpu = plan.gpu
    return docker.ContainerArgs(
        name=plan.container_name,
        image=args.image,
        command=list(plan.command),
        entrypoints=list(plan.entrypoint) if plan.entrypoint is not None else None,
        envs=[f"{key}={value}" for key, value in sorted(plan.env.items())] or None,
        user=plan.user,
        read_only=plan.read_only,
        tmpfs=dict(plan.tmpfs) or None,
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(plan.cap_add) or None),
        security_opts=["no-new-privileges:true"],
        memory=plan.memory_mb,
        cpus=f"{plan.cpus:g}",
        shm_size=plan.shm_size_mb,
        restart="unless-stopped",
        ports=[docker.ContainerPortArgs(internal=p.container, external=p.host, ip=p.host_ip, protocol="tcp")
               for p in plan.ports],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=runtime.network.name, aliases=[plan.name])],
        volumes=[
            docker.ContainerVolumeArgs(container_path=m.target, volume_name=m.volume, host_path=m.host_path,
                                       read_only=m.read_only or None)
            for m in mounts
        ] or None,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", *health.test], interval=f"{health.interval_s}s", timeout=f"{health.timeout_s}s",
            retries=health.retries, start_period=f"{health.start_period_s}s"),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        uploads=_uploads(plan, args.secrets) or None,
        device_requests=[docker.ContainerDeviceRequestArgs(
            driver="nvidia", device_ids=list(gpu.device_ids), capabilities=list(gpu.capabilities))] if gpu else None,
        labels=[docker.ContainerLabelArgs(label=label, value=value) for label, value in _labels(plan)],
    )
