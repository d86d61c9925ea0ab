"""Policy-pack configuration derived from the plan.

The same mapping is passed to the policies by the offline plan and rendered to
`policy/policy-config.json` for `pulumi preview --policy-pack policies
--policy-pack-config <file>`, so both runs judge with the same GPU inventory and the same
reviewed exceptions. Exceptions are keyed on the kind label (`ai-swarm.kind`), never on
resource names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swarm.model import SwarmSpec

if TYPE_CHECKING:
    from swarm.plan.types import SwarmPlan


@dataclass(frozen=True)
class PolicyException:
    """A reviewed exception: `policy` is waived for containers whose kind label is `kind`."""

    policy: str
    kind: str
    reason: str


EXCEPTIONS: tuple[PolicyException, ...] = ()


def gpu_inventory(spec: SwarmSpec) -> dict[str, list[int]]:
    return {name: [gpu.index for gpu in node.gpus] for name, node in spec.nodes.items() if node.gpus}


def policy_config(plan: SwarmPlan) -> dict[str, dict[str, Any]]:
    placed = {service.kind for service in plan.services}
    config: dict[str, dict[str, Any]] = {"gpu-device-inventory": {"gpu_inventory": gpu_inventory(plan.spec)}}
    for exception in EXCEPTIONS:
        if exception.kind in placed:
            config.setdefault(exception.policy, {}).setdefault("allow_kinds", []).append(exception.kind)
    return config


def render_policy_config(plan: SwarmPlan) -> str:
    return json.dumps(policy_config(plan), indent=2, sort_keys=True) + "\n"


def exception_reason(policy: str, kind: str | None) -> str | None:
    """Why `policy` is waived for containers of `kind`, if an exception covers it."""
    return next((e.reason for e in EXCEPTIONS if e.policy == policy and e.kind == kind), None)
