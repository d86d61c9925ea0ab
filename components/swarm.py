"""The whole swarm: one NodeRuntime per node, then the services placed on them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.node_runtime import NodeRuntime, NodeRuntimeArgs
from swarm.model import SwarmSpec


@dataclass(frozen=True)
class SwarmArgs:
    spec: SwarmSpec


class Swarm(pulumi.ComponentResource):
    """Everything `pulumi up` manages for one stack, built from a validated `SwarmSpec`."""

    nodes: dict[str, NodeRuntime]

    def __init__(self, name: str, args: SwarmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:index:Swarm", name, None, opts)
        spec = args.spec
        self.nodes = {
            node_name: NodeRuntime(
                node_name,
                NodeRuntimeArgs(node=node_name, ssh_user=node.ssh_user, tailscale_ip=node.tailscale_ip),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for node_name, node in spec.nodes.items()
        }
        self.register_outputs({})
