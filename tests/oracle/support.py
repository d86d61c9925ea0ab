"""Helpers for the Oracle node and tailnet tests: plans from edited prod config, a required tool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarm.plan import SwarmPlan
from swarm.plan.builder import build_plan
from swarm.stack_config import build_spec
from tests.swarm.conftest import config_of
from tests.tools import require_tool  # noqa: F401  (re-exported for the tests of this folder)

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0LWtleS1ub3QtcmVhbC1ub3QtdXNlZA== operator@laptop"
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaatestcompartment"


def plan_of(values: dict[str, Any], edit: Callable[[dict[str, Any]], None] | None = None) -> SwarmPlan:
    if edit is not None:
        edit(values)
    return build_plan(build_spec(config_of(values)))


def oracle_oci(values: dict[str, Any]) -> dict[str, Any]:
    oci: dict[str, Any] = values["ai-swarm:nodes"]["oracle"]["oci"]
    return oci


