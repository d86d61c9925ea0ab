"""Policy-pack configuration derived from the stack model.

The same mapping is passed to the policies by the offline plan and rendered to
`policy/policy-config.json` for `pulumi preview --policy-pack policies
--policy-pack-config <file>`, so both runs judge with the same GPU inventory and the same
per-resource exceptions.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from swarm.model import SwarmSpec


@dataclass(frozen=True)
class PolicyException:
    """A legitimate, reviewed exception: `policy` is waived for resources named like `resources`."""

    policy: str
    resources: str
    reason: str


EXCEPTIONS: tuple[PolicyException, ...] = (
    PolicyException(
        "image-digest-pinned", "*-router-container",
        "the runtime image is built on the node itself (no registry), so it has a version tag but no digest"),
    PolicyException(
        "image-digest-pinned", "*-autotuner-container",
        "the runtime image is built on the node itself (no registry), so it has a version tag but no digest"),
)


def gpu_inventory(spec: SwarmSpec) -> dict[str, list[int]]:
    return {name: [gpu.index for gpu in node.gpus] for name, node in spec.nodes.items() if node.gpus}


def policy_config(spec: SwarmSpec) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {"gpu-device-inventory": {"gpu_inventory": gpu_inventory(spec)}}
    for exception in EXCEPTIONS:
        config.setdefault(exception.policy, {}).setdefault("allow", []).append(exception.resources)
    return config


def exception_reason(policy: str, resource_name: str) -> str | None:
    """Why `policy` is waived for `resource_name`, if an exception covers it."""
    return next((e.reason for e in EXCEPTIONS
                 if e.policy == policy and fnmatch.fnmatchcase(resource_name, e.resources)), None)
