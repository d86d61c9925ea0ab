"""The one generic component: a `ServicePlan` turned into Docker resources on its node.

How files reach a container whose root filesystem is read-only. The provider creates a
container, copies every upload with `CopyToContainer(id, "/", tar)`, then starts it; the
engine checks the copy's *destination* `/`, which is never a volume, so a read-only root
refuses every upload ("container rootfs is marked read-only"), volumes or not
(tests/engine shows it on a real dockerd). So the files go through a loader:

- a volume at the plan's `config_dir` and one at `/run/secrets`;
- `<name>-files`: a container of the same image that is created and never started
  (`start=False`, `must_run=False`, no network), with a writable root and those two volumes
  read-write; it receives the uploads, owned by root and readable by the service's group only
  (0440). Secrets come from secret Outputs and stay secret in state;
- the service container mounts the two volumes read-only and carries the loader's ID as a
  label, so a changed file (a new loader) replaces the service container too.

What the provider reads back after create and on refresh (`swarm.provider_readback`): the inputs
are sent in its spelling (`cpus` "1.0", durations "1m0s"), and `memory_swap` is set (equal to
`memory`: no swap) because the engine stores twice `memory` when it is not (a kernel without swap
accounting stores -1 either way, and refreshes show `memorySwap`; cgroup v2 hosts, Ubuntu 22.04 and
later, have it: `docker info` shows no "No swap limit support" warning). The provider's update
applies neither `healthcheck` nor `tmpfs` (neither forces a new container, and its update only
changes restart policy and resource limits), so a change to either replaces the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pulumi
import pulumi_docker as docker

from components.node_runtime import NodeRuntime
from swarm.kinds import (
    LABEL_FILES,
    LABEL_KIND,
    LABEL_NODE,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_VOLUME_ROLE,
    ROLE_FILES,
    TYPE_SERVICE,
    VOLUME_ROLE_DATA,
    VOLUME_ROLE_GENERATED,
)
from swarm.plan.types import SECRETS_DIR, Mount, ServicePlan, secret_path
from swarm.provider_readback import cpus_input, seconds_input

FILE_OWNER = "0"
LOADER_MEMORY_MB = 16
# Labels the json-file driver writes into every log line, so the log shipper can tell services apart.
LOG_LABELS = ",".join((LABEL_NODE, LABEL_SERVICE, LABEL_KIND))
FILE_MODE = "0440"
# Inputs the provider's update silently leaves unapplied (resourceDockerContainerUpdate), so a
# change must replace the container for the running one to get it.
REPLACED_ON_CHANGE = ("healthcheck", "tmpfs")


@dataclass(frozen=True)
class Upload:
    """One file the provider copies into the container after create, before start (plain data)."""

    path: str
    owner: str
    group: str
    mode: str
    content: str | None = None
    """A rendered file's exact text; None for a secret."""
    secret_source: str | None = None
    """For a secret: the `SecretFile.source` whose value is the content."""


@dataclass(frozen=True)
class Delivery:
    """How a plan's files reach its container. The component and tests/engine both read this.

    `mounts`: the service container's (the plan's own, then the config and secrets volumes,
    read-only); `loader_mounts`: the loader's (the same two volumes, read-write); `uploads`:
    what the loader receives."""

    mounts: tuple[Mount, ...]
    loader_mounts: tuple[Mount, ...]
    uploads: tuple[Upload, ...]


def delivery(plan: ServicePlan) -> Delivery:
    files: list[Mount] = []
    if plan.files:
        files.append(Mount(target=plan.config_dir, volume=f"{plan.container_name}-config"))
    if plan.secret_files:
        files.append(Mount(target=SECRETS_DIR, volume=f"{plan.container_name}-secrets"))
    uploads = [
        *(Upload(plan.file_path(f), FILE_OWNER, plan.gid, FILE_MODE, content=f.content) for f in plan.files),
        *(Upload(secret_path(s.name), FILE_OWNER, plan.gid, FILE_MODE, secret_source=s.source)
          for s in plan.secret_files),
    ]
    mounts = (*plan.mounts, *(replace(m, read_only=True) for m in files))
    return Delivery(mounts, tuple(files), tuple(uploads))


@dataclass(frozen=True)
class ServiceContainerArgs:
    plan: ServicePlan
    runtime: NodeRuntime
    image: pulumi.Input[str]
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Secret values by `SecretFile.source` (generated:<id> or config:<key>)."""


class ServiceContainer(pulumi.ComponentResource):
    container: docker.Container
    loader: docker.Container | None
    volumes: dict[str, docker.Volume]

    def __init__(self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_SERVICE, name, None, opts)
        plan, runtime = args.plan, args.runtime
        planned = delivery(plan)
        self.volumes = {}
        for mount in planned.mounts:
            if mount.volume is not None:
                self.volumes[mount.volume] = self._volume(name, plan, mount, runtime)
        volumes = list(self.volumes.values())
        self.loader = None
        labels: list[tuple[str, pulumi.Input[str]]] = list(_labels(plan))
        if planned.uploads:
            self.loader = docker.Container(
                f"{name}-files",
                _loader_args(plan, args, planned),
                opts=pulumi.ResourceOptions(parent=self, provider=runtime.provider, depends_on=volumes,
                                            additional_secret_outputs=["uploads"] if plan.secret_files else None),
            )
            labels.append((LABEL_FILES, self.loader.id))
        self.container = docker.Container(
            f"{name}-container",
            _container_args(plan, runtime, args, planned.mounts, labels),
            opts=pulumi.ResourceOptions(
                parent=self, provider=runtime.provider, depends_on=volumes,
                protect=plan.stateful, retain_on_delete=plan.stateful,
                replace_on_changes=list(REPLACED_ON_CHANGE),
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


def _volume_args(mounts: tuple[Mount, ...]) -> list[docker.ContainerVolumeArgs] | None:
    return [docker.ContainerVolumeArgs(container_path=m.target, volume_name=m.volume, host_path=m.host_path,
                                       read_only=m.read_only or None) for m in mounts] or None


def _loader_args(plan: ServicePlan, args: ServiceContainerArgs, planned: Delivery) -> docker.ContainerArgs:
    """A container that only holds the volumes while the provider copies the uploads in."""
    return docker.ContainerArgs(
        name=f"{plan.container_name}-files",
        image=args.image,
        command=["true"],
        start=False,
        must_run=False,
        user=plan.user,
        read_only=False,  # the engine refuses copies into a read-only root; nothing ever runs here
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        network_mode="none",
        memory=LOADER_MEMORY_MB,
        memory_swap=LOADER_MEMORY_MB,
        restart="no",
        healthcheck=docker.ContainerHealthcheckArgs(tests=["NONE"]),
        log_driver="json-file",
        log_opts={"max-size": "1m", "max-file": "1"},
        volumes=_volume_args(planned.loader_mounts),
        uploads=_uploads(plan, args.secrets),
        labels=[docker.ContainerLabelArgs(label=label, value=value)
                for label, value in (*_labels(plan), (LABEL_ROLE, ROLE_FILES))],
    )


def _uploads(plan: ServicePlan, secrets: Mapping[str, pulumi.Output[str]]) -> list[docker.ContainerUploadArgs]:
    def content(upload: Upload) -> pulumi.Input[str]:
        if upload.content is not None:
            return upload.content
        assert upload.secret_source is not None
        return secrets[upload.secret_source]

    return [docker.ContainerUploadArgs(file=u.path, content=content(u), owner=u.owner, group=u.group,
                                       permissions=u.mode) for u in delivery(plan).uploads]


def _container_args(plan: ServicePlan, runtime: NodeRuntime, args: ServiceContainerArgs, mounts: tuple[Mount, ...],
                    labels: list[tuple[str, pulumi.Input[str]]]) -> docker.ContainerArgs:
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
        memory_swap=plan.memory_mb,  # no swap; unset, the engine stores twice `memory` and every refresh differs
        cpus=cpus_input(plan.cpus),
        shm_size=plan.shm_size_mb,
        restart="unless-stopped",
        ports=[docker.ContainerPortArgs(internal=p.container, external=p.host, ip=p.host_ip, protocol="tcp")
               for p in plan.ports],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=runtime.network.name, aliases=[plan.name])],
        volumes=_volume_args(mounts),
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", *health.test], interval=seconds_input(health.interval_s),
            timeout=seconds_input(health.timeout_s), retries=health.retries,
            start_period=seconds_input(health.start_period_s)),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3", "labels": LOG_LABELS},
        device_requests=[docker.ContainerDeviceRequestArgs(
            driver="nvidia", device_ids=list(gpu.device_ids), capabilities=list(gpu.capabilities))] if gpu else None,
        labels=[docker.ContainerLabelArgs(label=label, value=value) for label, value in labels],
    )
