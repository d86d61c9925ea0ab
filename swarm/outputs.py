"""Stack outputs from the plan: a versioned shape other tools read with `pulumi stack output --json`.

The shape is `schemas/stack-outputs.v1.json`; bump `OUTPUTS_VERSION` on any breaking change.
Only what the plan deploys appears: a service without a container has no endpoint.
"""

from __future__ import annotations

from typing import Any

from swarm.capacity import capacity_rows
from swarm.plan.types import SwarmPlan

OUTPUTS_VERSION = 1


def docker_host(plan: SwarmPlan, node: str) -> str:
    spec_node = plan.spec.nodes[node]
    return f"ssh://{spec_node.ssh_user}@{spec_node.tailscale_ip}"


def stack_outputs(plan: SwarmPlan) -> dict[str, Any]:
    spec = plan.spec
    vllm = {service.name for service in plan.of_kind("vllm")}
    return {
        "outputs_version": OUTPUTS_VERSION,
        "nodes": {
            name: {
                "role": node.role,
                "arch": node.arch,
                "tailscale_ip": node.tailscale_ip,
                "docker_host": docker_host(plan, name),
                "gpus": [{"index": gpu.index, "model": gpu.model, "vram_gb": gpu.vram_gb} for gpu in node.gpus],
            }
            for name, node in spec.nodes.items()
        },
        "inference": {
            name: {
                "model": deployment.model,
                "node": deployment.node,
                "gpu": deployment.gpu,
                "url": plan.endpoints[name].url,
                "max_model_len": deployment.max_model_len,
                "max_num_seqs": deployment.max_num_seqs,
            }
            for name, deployment in spec.inference.items() if name in vllm
        },
        "services": {
            name: {"node": endpoint.node, "kind": endpoint.kind, "url": endpoint.url}
            for name, endpoint in plan.endpoints.items() if name not in vllm
        },
        "capacity": capacity_rows(plan.capacity),
    }
