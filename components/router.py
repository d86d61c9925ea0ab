"""swarm-router on the gateway node, in front of every planned vLLM deployment."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.hardened_container import ContainerSpec, PublishedPort, hardened_container, http_healthcheck
from components.node_runtime import NodeRuntime
from swarm.render.runtime import ROUTER_CONFIG_PATH, ROUTER_PORT, SECRET_FILES


@dataclass(frozen=True)
class SwarmRouterArgs:
    service: str
    node: str
    tailscale_ip: str
    host_port: int
    config_yaml: str
    image: pulumi.Input[str]
    api_key: pulumi.Input[str]
    admin_key: pulumi.Input[str]
    runtime: NodeRuntime


class SwarmRouter(pulumi.ComponentResource):
    """The router container; its config is the rendered `swarm-router/router.yaml`."""

    container: docker.Container

    def __init__(self, name: str, args: SwarmRouterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:runtime:SwarmRouter", name, None, opts)
        self.container = hardened_container(
            f"{name}-container",
            ContainerSpec(
                service=args.service,
                kind="router",
                node=args.node,
                image=args.image,
                command=("swarm-router", "--config", ROUTER_CONFIG_PATH),
                healthcheck=http_healthcheck(ROUTER_PORT),
                memory_mb=512,
                ports=(PublishedPort(ROUTER_PORT, args.host_port, args.tailscale_ip),),
                files={ROUTER_CONFIG_PATH: args.config_yaml},
                secret_files={SECRET_FILES["router-api-key"]: args.api_key,
                              SECRET_FILES["router-admin-key"]: args.admin_key},
            ),
            args.runtime,
            parent=self,
        )
        self.register_outputs({"container": self.container.name})
