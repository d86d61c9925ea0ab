"""Cross-reference and feasibility checks over a parsed `SwarmSpec`.

Pydantic checks each value's type; these checks need the whole swarm: a deployment's node
must exist and have the GPU it names, host ports must not collide on a node, and every GPU's
instances must fit (see `swarm.capacity`).
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.capacity import plan_capacity
from swarm.errors import Issue, key_path
from swarm.kinds import CONFIGURED_KINDS
from swarm.model import SwarmSpec
from swarm.oracle.node import oci_issues
from swarm.ports import published_ports

SERVICE_KINDS = frozenset(CONFIGURED_KINDS)


def check_spec(spec: SwarmSpec) -> list[Issue]:
    """Every cross-reference problem, then (only if references hold) every capacity problem."""
    issues = [*_deployment_issues(spec), *_service_issues(spec), *_node_issues(spec), *oci_issues(spec)]
    if issues:
        return issues
    return [*_port_issues(spec), *_capacity_issues(spec)]


def _deployment_issues(spec: SwarmSpec) -> Iterator[Issue]:
    for name, deployment in spec.inference.items():
        if deployment.model not in spec.models:
            yield Issue(key_path("inference", name, "model"),
                        f"unknown model {deployment.model!r}; defined: {sorted(spec.models)}")
        node = spec.nodes.get(deployment.node)
        if node is None:
            yield Issue(key_path("inference", name, "node"),
                        f"unknown node {deployment.node!r}; defined: {sorted(spec.nodes)}")
        elif not node.gpus:
            yield Issue(key_path("inference", name, "node"),
                        f"node {deployment.node!r} has no GPU; vLLM needs one. GPU nodes: "
                        f"{sorted(spec.gpu_nodes())}")
        elif node.gpu(deployment.gpu) is None:
            yield Issue(key_path("inference", name, "gpu"),
                        f"node {deployment.node!r} has no GPU index {deployment.gpu}; it has "
                        f"{[gpu.index for gpu in node.gpus]}")


def _service_issues(spec: SwarmSpec) -> Iterator[Issue]:
    for name, service in spec.services.items():
        if service.node not in spec.nodes:
            yield Issue(key_path("services", name, "node"),
                        f"unknown node {service.node!r}; defined: {sorted(spec.nodes)}")
        if service.kind is None and name not in SERVICE_KINDS:
            yield Issue(key_path("services", name, "kind"),
                        f"{name!r} is not a known service; set kind to one of {sorted(SERVICE_KINDS)}")
        if service.adopt and spec.service_kind(name) != "qdrant":
            yield Issue(key_path("services", name, "adopt"),
                        "only an already-running qdrant can be adopted")


def _node_issues(spec: SwarmSpec) -> Iterator[Issue]:
    seen: dict[str, str] = {}
    for name, node in spec.nodes.items():
        other = seen.setdefault(node.tailscale_ip, name)
        if other != name:
            yield Issue(key_path("nodes", name, "tailscale_ip"),
                        f"{node.tailscale_ip} is already node {other!r}'s address")


def _port_issues(spec: SwarmSpec) -> Iterator[Issue]:
    owners: dict[tuple[str, int], str] = {}
    for binding in published_ports(spec):
        key = (binding.node, binding.port)
        if key in owners:
            yield Issue(binding.config_path,
                        f"host port {binding.port} on node {binding.node!r} is already published by "
                        f"{owners[key]}; pick a free port")
        else:
            owners[key] = binding.owner


def _capacity_issues(spec: SwarmSpec) -> Iterator[Issue]:
    for name, deployment in spec.inference.items():
        model = spec.models[deployment.model]
        if deployment.max_model_len > model.native_context:
            yield Issue(key_path("inference", name, "max_model_len"),
                        f"{deployment.max_model_len} exceeds {deployment.model}'s native context "
                        f"{model.native_context} (rope scaling is not planned for)")
    for gpu in plan_capacity(spec):
        names = [instance.deployment for instance in gpu.instances]
        if gpu.over_ceiling:
            shares = " + ".join(f"{i.deployment} {i.utilization:.2f}" for i in gpu.instances)
            yield Issue(key_path("inference", "{" + ",".join(names) + "}", "gpu_memory_utilization"),
                        f"{gpu.label} ({gpu.gpu_model}, {gpu.total_gib:.1f} GiB): {shares} = "
                        f"{gpu.utilization_sum:.2f} is over the ceiling {gpu.ceiling:.2f} "
                        f"(ai-swarm:capacity.utilization_ceiling)")
        for instance in gpu.instances:
            if not instance.fits:
                yield Issue(key_path("inference", instance.deployment, "gpu_memory_utilization"),
                            f"{instance.model} does not fit on {gpu.label} ({gpu.gpu_model}): "
                            f"{instance.shortfall()}")
