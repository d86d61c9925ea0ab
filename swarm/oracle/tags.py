"""Who is who on the tailnet: one tag per node, one for the Pulumi runner, one operators' group."""

from __future__ import annotations

from swarm.model import SwarmSpec


def node_tag(spec: SwarmSpec, node: str) -> str:
    return f"tag:{spec.tailnet.tag_prefix}-{node}"


def runner_tag(spec: SwarmSpec) -> str:
    """The machine that runs `pulumi up` (SSH to every node: Docker provider, readiness)."""
    return f"tag:{spec.tailnet.tag_prefix}-runner"


def operators_group(spec: SwarmSpec) -> str:
    return f"group:{spec.tailnet.tag_prefix}-operators"


def all_tags(spec: SwarmSpec) -> tuple[str, ...]:
    return (*(node_tag(spec, node) for node in spec.nodes), runner_tag(spec))
