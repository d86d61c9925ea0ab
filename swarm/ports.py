"""Host ports each node publishes, and the URLs other nodes reach them at.

Every published port binds to the node's Tailscale address, so an endpoint is always
`http://<tailscale_ip>:<port>`; nothing listens on 0.0.0.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from swarm.errors import key_path
from swarm.model import SwarmSpec


@dataclass(frozen=True)
class PortBinding:
    node: str
    port: int
    owner: str
    config_path: str


def published_ports(spec: SwarmSpec) -> Iterator[PortBinding]:
    """Every host port the swarm publishes, in config order: agents, inference, services."""
    agents = spec.agents
    for node_name, node in spec.nodes.items():
        yield PortBinding(node_name, agents.node_exporter_port, "node-exporter",
                          key_path("agents", "node_exporter_port"))
        if node.gpus:
            yield PortBinding(node_name, agents.gpu_exporter_port, "gpu-exporter",
                              key_path("agents", "gpu_exporter_port"))
            yield PortBinding(node_name, agents.autotuner_port, "swarm-autotuner",
                              key_path("agents", "autotuner_port"))
    for name, deployment in spec.inference.items():
        yield PortBinding(deployment.node, deployment.port, f"inference {name!r}",
                          key_path("inference", name, "port"))
    for name, service in spec.services.items():
        if service.port is not None:
            yield PortBinding(service.node, service.port, f"service {name!r}",
                              key_path("services", name, "port"))


def endpoint(spec: SwarmSpec, node: str, port: int) -> str:
    return f"http://{spec.nodes[node].tailscale_ip}:{port}"
