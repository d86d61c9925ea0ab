"""Stack outputs: a versioned shape other tools read with `pulumi stack output --json`.

The shape is `schemas/stack-outputs.v1.json`; bump `OUTPUTS_VERSION` on any breaking change.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.swarm import Swarm
from swarm.capacity import plan_capacity
from swarm.model import SwarmSpec
from swarm.ports import endpoint

OUTPUTS_VERSION = 1


def stack_outputs(spec: SwarmSpec, swarm: Swarm) -> dict[str, Any]:
    return {
        "outputs_version": OUTPUTS_VERSION,
        "nodes": {
            name: {
                "role": node.role,
                "arch": node.arch,
                "tailscale_ip": node.tailscale_ip,
                "docker_host": swarm.nodes[name].docker_host,
                "gpus": [{"index": gpu.index, "model": gpu.model, "vram_gb": gpu.vram_gb} for gpu in node.gpus],
            }
            for name, node in spec.nodes.items()
        },
        "inference": {
            name: {
                "model": deployment.model,
                "node": deployment.node,
                "gpu": deployment.gpu,
                "url": endpoint(spec, deployment.node, deployment.port),
                "max_model_len": deployment.max_model_len,
                "max_num_seqs": deployment.max_num_seqs,
            }
            for name, deployment in spec.inference.items()
        },
        "services": {
            name: {
                "node": service.node,
                "url": endpoint(spec, service.node, service.port) if service.port else None,
            }
            for name, service in spec.services.items()
        },
        "capacity": [
            {
                "gpu": gpu.label,
                "total_gib": round(gpu.total_gib, 3),
                "utilization_sum": gpu.utilization_sum,
                "headroom_gib": round(gpu.headroom_gib, 3),
                "instances": {
                    i.deployment: {"kv_tokens": i.kv_tokens, "full_sequences": round(i.full_sequences, 3)}
                    for i in gpu.instances
                },
            }
            for gpu in plan_capacity(spec)
        ],
    }


def export_outputs(spec: SwarmSpec, swarm: Swarm) -> None:
    for key, value in stack_outputs(spec, swarm).items():
        pulumi.export(key, value)
