"""The whole swarm: one NodeRuntime per node, then the services placed on them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.autotuner import SwarmAutotuner, SwarmAutotunerArgs
from components.node_runtime import NodeRuntime, NodeRuntimeArgs
from components.router import SwarmRouter, SwarmRouterArgs
from components.runtime_image import RuntimeImage, RuntimeImageArgs
from components.secrets import GeneratedSecrets, GeneratedSecretsArgs
from swarm.model import SwarmSpec
from swarm.render import rendered_files
from swarm.render.runtime import router_host_port, router_service

GENERATED_SECRETS = ("router-api-key", "router-admin-key")


@dataclass(frozen=True)
class SwarmArgs:
    spec: SwarmSpec


class Swarm(pulumi.ComponentResource):
    """Everything `pulumi up` manages for one stack, built from a validated `SwarmSpec`."""

    nodes: dict[str, NodeRuntime]

    def __init__(self, name: str, args: SwarmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:index:Swarm", name, None, opts)
        spec = args.spec
        child = pulumi.ResourceOptions(parent=self)
        self.nodes = {
            node_name: NodeRuntime(
                node_name,
                NodeRuntimeArgs(node=node_name, ssh_user=node.ssh_user, tailscale_ip=node.tailscale_ip),
                opts=child,
            )
            for node_name, node in spec.nodes.items()
        }
        self._runtime(spec, child)
        self.register_outputs({})

    def _runtime(self, spec: SwarmSpec, child: pulumi.ResourceOptions) -> None:
        """swarm-router on its node and an autotuner on every GPU node that serves a model."""
        files = rendered_files(spec)
        router_name = router_service(spec)
        if router_name is None or "swarm-router/router.yaml" not in files:
            return
        secrets = GeneratedSecrets("runtime-secrets", GeneratedSecretsArgs(GENERATED_SECRETS), opts=child)
        images: dict[str, RuntimeImage] = {}

        def image_on(node: str) -> pulumi.Output[str]:
            if node not in images:
                images[node] = RuntimeImage(
                    f"{node}-runtime",
                    RuntimeImageArgs(arch=spec.nodes[node].arch, provider=self.nodes[node].provider),
                    opts=pulumi.ResourceOptions(parent=self.nodes[node]),
                )
            return images[node].image_name

        service = spec.services[router_name]
        SwarmRouter(
            f"{service.node}-router",
            SwarmRouterArgs(
                service=router_name, node=service.node, tailscale_ip=spec.nodes[service.node].tailscale_ip,
                host_port=router_host_port(spec, router_name), config_yaml=files["swarm-router/router.yaml"],
                image=image_on(service.node), api_key=secrets.values["router-api-key"],
                admin_key=secrets.values["router-admin-key"], runtime=self.nodes[service.node],
            ),
            opts=pulumi.ResourceOptions(parent=self.nodes[service.node]),
        )
        for node_name, node in spec.gpu_nodes().items():
            config = files.get(f"swarm-autotuner/{node_name}.yaml")
            if config is None:
                continue
            SwarmAutotuner(
                f"{node_name}-autotuner",
                SwarmAutotunerArgs(
                    node=node_name, tailscale_ip=node.tailscale_ip, host_port=spec.agents.autotuner_port,
                    gpu_ids=tuple(str(gpu.index) for gpu in node.gpus), config_yaml=config,
                    image=image_on(node_name), admin_key=secrets.values["router-admin-key"],
                    runtime=self.nodes[node_name],
                ),
                opts=pulumi.ResourceOptions(parent=self.nodes[node_name]),
            )
