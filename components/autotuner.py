"""swarm-autotuner on a GPU node: NVML (utility capability only) + local vLLM metrics."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.hardened_container import ContainerSpec, PublishedPort, hardened_container, http_healthcheck
from components.node_runtime import NodeRuntime
from swarm.render.runtime import AUTOTUNER_CONFIG_PATH, AUTOTUNER_PORT, SECRET_FILES


@dataclass(frozen=True)
class SwarmAutotunerArgs:
    node: str
    tailscale_ip: str
    host_port: int
    gpu_ids: tuple[str, ...]
    config_yaml: str
    image: pulumi.Input[str]
    admin_key: pulumi.Input[str]
    runtime: NodeRuntime


class SwarmAutotuner(pulumi.ComponentResource):
    """Sees the GPUs for NVML only (`utility`: no compute), read-only root filesystem."""

    container: docker.Container

    def __init__(self, name: str, args: SwarmAutotunerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:runtime:SwarmAutotuner", name, None, opts)
        self.container = hardened_container(
            f"{name}-container",
            ContainerSpec(
                service="swarm-autotuner",
                kind="autotuner",
                node=args.node,
                image=args.image,
                command=("swarm-autotuner", "--config", AUTOTUNER_CONFIG_PATH),
                healthcheck=http_healthcheck(AUTOTUNER_PORT),
                memory_mb=256,
                ports=(PublishedPort(AUTOTUNER_PORT, args.host_port, args.tailscale_ip),),
                files={AUTOTUNER_CONFIG_PATH: args.config_yaml},
                secret_files={SECRET_FILES["router-admin-key"]: args.admin_key},
                gpu_capabilities=("utility",),
                gpu_ids=args.gpu_ids,
            ),
            args.runtime,
            parent=self,
        )
        self.register_outputs({"container": self.container.name})
