"""The whole swarm: a loop over the plan. One NodeRuntime per node, one ServiceContainer per
planned service, the images they run and the secrets they receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.images import NodeImages
from components.node_runtime import NodeRuntime, NodeRuntimeArgs
from components.secrets import GeneratedSecrets, GeneratedSecretsArgs
from components.service_container import ServiceContainer, ServiceContainerArgs
from swarm.kinds import TYPE_SWARM
from swarm.plan.types import SwarmPlan

GENERATED = "generated:"
CONFIG = "config:"


@dataclass(frozen=True)
class SwarmArgs:
    plan: SwarmPlan
    config_secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    """Operator-set secrets (`pulumi config set --secret KEY`) by key, as secret Outputs."""


class Swarm(pulumi.ComponentResource):
    """Everything `pulumi up` manages for one stack, built from a `SwarmPlan`."""

    nodes: dict[str, NodeRuntime]
    services: dict[str, ServiceContainer]

    def __init__(self, name: str, args: SwarmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_SWARM, name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        self.nodes = {
            node_name: NodeRuntime(
                node_name,
                NodeRuntimeArgs(node=node_name, ssh_user=node.ssh_user, tailscale_ip=node.tailscale_ip),
                opts=child,
            )
            for node_name, node in plan.spec.nodes.items()
        }
        generated = GeneratedSecrets("swarm-secrets", GeneratedSecretsArgs(plan.secret_sources(GENERATED)),
                                     opts=child)
        secrets = {f"{GENERATED}{key}": value for key, value in generated.values.items()}
        secrets.update({f"{CONFIG}{key}": value for key, value in args.config_secrets.items()})
        images = {node: NodeImages(node, runtime, plan.spec.nodes[node].arch) for node, runtime in self.nodes.items()}
        self.services = {
            service.name: ServiceContainer(
                service.name,
                ServiceContainerArgs(plan=service, runtime=self.nodes[service.node],
                                     image=images[service.node].reference(service.image),
                                     secrets={s.source: secrets[s.source] for s in service.secret_files}),
                opts=pulumi.ResourceOptions(parent=self.nodes[service.node]),
            )
            for service in plan.services
        }
        self.register_outputs({})
