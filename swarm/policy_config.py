"""Policy-pack configuration derived from the stack model.

The same mapping is passed to the policies by the offline plan and rendered to
`policy/policy-config.json` for `pulumi preview --policy-pack policies
--policy-pack-config <file>`, so both runs judge with the same inventory and exceptions.
"""

from __future__ import annotations

from typing import Any

from swarm.model import SwarmSpec


def gpu_inventory(spec: SwarmSpec) -> dict[str, list[int]]:
    return {name: [gpu.index for gpu in node.gpus] for name, node in spec.nodes.items() if node.gpus}


def policy_config(spec: SwarmSpec) -> dict[str, dict[str, Any]]:
    return {}
