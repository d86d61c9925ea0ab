"""The files this package renders into the plan: the tailnet policy and each OCI node's user-data."""

from __future__ import annotations

from swarm.oracle.acl import ACL_PATH, render_acl
from swarm.oracle.cloud_init import render_path, render_user_data
from swarm.oracle.node import oci_nodes
from swarm.plan.types import SwarmPlan


def oracle_files(plan: SwarmPlan) -> dict[str, str]:
    """Render path -> content; raises `SpecError` when the generated policy would be refused."""
    files = {ACL_PATH: render_acl(plan)}
    for node in oci_nodes(plan.spec):
        files[render_path(node)] = render_user_data(plan.spec, node)
    return files
