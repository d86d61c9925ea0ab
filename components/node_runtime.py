"""A node's container runtime: the Docker engine reached over Tailscale, and a private network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from swarm.kinds import LABEL_NODE, TYPE_NODE

NETWORK_NAME = "ai-swarm"


@dataclass(frozen=True)
class NodeRuntimeArgs:
    node: str
    ssh_user: str
    tailscale_ip: str
    ready: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist before anything talks to this node's engine (e.g. its readiness check)."""


class NodeRuntime(pulumi.ComponentResource):
    """One Docker provider per node (`ssh://user@<tailscale ip>`) plus the node's private bridge
    network. Every container of the node is created through `provider` and attached to `network`."""

    provider: docker.Provider
    network: docker.Network
    docker_host: str

    def __init__(self, name: str, args: NodeRuntimeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_NODE, name, None, opts)
        self.docker_host = f"ssh://{args.ssh_user}@{args.tailscale_ip}"
        self.provider = docker.Provider(
            f"{name}-docker",
            host=self.docker_host,
            ssh_opts=["-o", "BatchMode=yes", "-o", "ServerAliveInterval=30"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.ready)),
        )
        self.network = docker.Network(
            f"{name}-network",
            name=NETWORK_NAME,
            driver="bridge",
            attachable=False,
            labels=[docker.NetworkLabelArgs(label=LABEL_NODE, value=args.node)],
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.register_outputs({"docker_host": self.docker_host, "network": self.network.name})
