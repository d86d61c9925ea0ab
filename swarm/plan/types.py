"""What the swarm deploys, as plain data: the `SwarmPlan` and the pieces it is made of.

Built once from a validated `SwarmSpec` (`swarm.plan.build_plan`); components, rendered
files, the diagram, stack outputs, policy config and the offline report all read it.
Nothing here knows about Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from swarm.capacity import GpuCapacity
from swarm.model import SwarmSpec

Arch = Literal["amd64", "arm64"]


@dataclass(frozen=True)
class PulledImage:
    """An image from a registry, pinned by tag and digest, with the platforms it is built for."""

    repository: str
    tag: str
    digest: str
    platforms: frozenset[Arch]

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class BuiltImage:
    """An image built from this repository on the node itself (`context` relative to the project root)."""

    name: str
    context: str
    dockerfile: str
    version: str
    platforms: frozenset[Arch] = frozenset({"amd64", "arm64"})

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


Image = PulledImage | BuiltImage


@dataclass(frozen=True)
class PortMapping:
    """`container` published on the node's `host_ip`:`host` (never 0.0.0.0)."""

    container: int
    host: int
    host_ip: str


@dataclass(frozen=True)
class Mount:
    """A named volume (`volume`) or a host directory (`host_path`) at `target`."""

    target: str
    volume: str | None = None
    host_path: str | None = None
    read_only: bool = False
    stateful: bool = False
    """Holds data that must survive: the volume is retained on delete and protected."""


@dataclass(frozen=True)
class PlannedFile:
    """A generated config file: `name` under the container's `config_dir`, `render_path` under
    `swarm render --out`. The container receives exactly `content`."""

    name: str
    content: str
    render_path: str


@dataclass(frozen=True)
class SecretFile:
    """A credential delivered as a file under `/run/secrets/<name>`.

    `source` is `generated:<id>` (pulumi-random, shared by every holder of the same id) or
    `config:<key>` (a `pulumi config set --secret` key)."""

    name: str
    source: str


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_s: int = 15
    timeout_s: int = 5
    retries: int = 3
    start_period_s: int = 20


@dataclass(frozen=True)
class GpuRequest:
    device_ids: tuple[str, ...]
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Flow:
    """`source` talks to `target` on `port` (the target's port as the source reaches it)."""

    source: str
    target: str
    port: int
    purpose: str
    cross_node: bool = False


@dataclass(frozen=True)
class ServicePlan:
    """One container on one node, fully decided: components only turn this into resources."""

    name: str
    kind: str
    node: str
    origin: str
    """The stack-config key path this container comes from (named in plan errors)."""
    image: Image
    command: tuple[str, ...]
    healthcheck: Healthcheck
    memory_mb: int
    cpus: float
    user: str = "10001:10001"
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortMapping, ...] = ()
    mounts: tuple[Mount, ...] = ()
    config_dir: str = "/etc/ai-swarm"
    files: tuple[PlannedFile, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    gpu: GpuRequest | None = None
    shm_size_mb: int | None = None
    tmpfs: Mapping[str, str] = field(default_factory=lambda: {"/tmp": "rw,noexec,nosuid,size=64m"})
    read_only: bool = True
    cap_add: tuple[str, ...] = ()
    internal_port: int | None = None
    """The port other containers on the node's private network reach this one at."""
    flows: tuple[Flow, ...] = ()
    """Connections this service opens (it is the `source` of each)."""
    stateful: bool = False
    """The container itself guards state (e.g. an adopted one): protected, retained on delete."""

    @property
    def container_name(self) -> str:
        return f"ai-swarm-{self.name}"

    @property
    def uid(self) -> str:
        return self.user.split(":")[0]

    @property
    def gid(self) -> str:
        parts = self.user.split(":")
        return parts[1] if len(parts) > 1 else parts[0]

    def file_path(self, planned: PlannedFile) -> str:
        return f"{self.config_dir}/{planned.name}"


SECRETS_DIR = "/run/secrets"


def secret_path(name: str) -> str:
    return f"{SECRETS_DIR}/{name}"


@dataclass(frozen=True)
class Endpoint:
    """How a service is reached: over the tailnet (`url`, None when private) and on its node's
    private network (`internal_url`)."""

    service: str
    kind: str
    node: str
    url: str | None
    internal_url: str | None


@dataclass(frozen=True)
class NodeMemory:
    """A node's RAM budget: each container's limit plus the OS reserve must fit."""

    node: str
    ram_mb: int
    reserve_mb: int
    shares: Mapping[str, int]

    @property
    def used_mb(self) -> int:
        return self.reserve_mb + sum(self.shares.values())

    @property
    def fits(self) -> bool:
        return self.used_mb <= self.ram_mb


@dataclass(frozen=True)
class SwarmPlan:
    spec: SwarmSpec
    services: tuple[ServicePlan, ...]
    flows: tuple[Flow, ...]
    endpoints: Mapping[str, Endpoint]
    capacity: tuple[GpuCapacity, ...]
    memory: tuple[NodeMemory, ...]
    extra_files: Mapping[str, str] = field(default_factory=dict)
    """Rendered files no container receives (policy config; later ACL, cloud-init)."""

    def on_node(self, node: str) -> tuple[ServicePlan, ...]:
        return tuple(service for service in self.services if service.node == node)

    def of_kind(self, kind: str) -> tuple[ServicePlan, ...]:
        return tuple(service for service in self.services if service.kind == kind)

    def service(self, name: str) -> ServicePlan:
        return next(service for service in self.services if service.name == name)

    def files(self) -> dict[str, str]:
        """Every rendered file: render path -> content (contract 2)."""
        rendered = dict(self.extra_files)
        for service in self.services:
            for planned in service.files:
                rendered[planned.render_path] = planned.content
        return dict(sorted(rendered.items()))

    def secret_sources(self, prefix: str) -> tuple[str, ...]:
        """Ids of every secret file source with `prefix` (`generated:` or `config:`), sorted."""
        ids = {s.source.removeprefix(prefix) for svc in self.services for s in svc.secret_files
               if s.source.startswith(prefix)}
        return tuple(sorted(ids))
