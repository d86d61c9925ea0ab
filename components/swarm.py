"""The whole swarm: a loop over the plan. One NodeRuntime per node, one ServiceContainer per
planned service, the images they run and the secrets they receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.adopted_container import AdoptedContainer, AdoptedContainerArgs
from components.images import NodeImages
from components.node_runtime import NodeRuntime, NodeRuntimeArgs
from components.readiness import prepare_nodes
from components.secrets import GeneratedSecrets, GeneratedSecretsArgs
from components.service_container import ServiceContainer, ServiceContainerArgs
from swarm.adopt import adoption_step
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
    adopted: dict[str, AdoptedContainer]

    def __init__(self, name: str, args: SwarmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_SWARM, name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        ready = prepare_nodes(plan, child)  # tailnet, OCI nodes, readiness: before any Docker resource
        self.nodes = {
            node_name: NodeRuntime(
                node_name,
                NodeRuntimeArgs(node=node_name, ssh_user=node.ssh_user, tailscale_ip=node.tailscale_ip,
                                ready=ready.get(node_name, ())),
                opts=child,
            )
            for node_name, node in plan.spec.nodes.items()
        }
        generated = GeneratedSecrets("swarm-secrets", GeneratedSecretsArgs(plan.secret_sources(GENERATED)),
                                     opts=child)
        secrets = {f"{GENERATED}{key}": value for key, value in generated.values.items()}
        secrets.update({f"{CONFIG}{key}": value for key, value in args.config_secrets.items()})
        images = {node: NodeImages(node, runtime, plan.spec.nodes[node].arch) for node, runtime in self.nodes.items()}
        # A container still being adopted (swarm.adopt: pending or imported as it runs) is not
        # built from its plan; once its ID is removed it is a ServiceContainer like any other.
        adopting = {s.name: (s, step) for s in plan.services
                    if (step := adoption_step(plan.spec, s.name)) and step.phase != "hardened"}
        self.adopted = {
            name: AdoptedContainer(name, AdoptedContainerArgs(plan=service, runtime=self.nodes[service.node],
                                                             step=step),
                                   opts=pulumi.ResourceOptions(parent=self.nodes[service.node]))
            for name, (service, step) in adopting.items()
        }
        self.services = {
            service.name: ServiceContainer(
                service.name,
                ServiceContainerArgs(plan=service, runtime=self.nodes[service.node],
                                     image=images[service.node].reference(service.image),
                                     secrets={s.source: secrets[s.source] for s in service.secret_files}),
                opts=pulumi.ResourceOptions(parent=self.nodes[service.node]),
            )
            for service in plan.services if service.name not in adopting
        }
        self.register_outputs({})
