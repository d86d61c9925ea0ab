"""Export the plan's stack outputs (shape: `swarm.outputs`, schema in `schemas/`)."""

from __future__ import annotations

import pulumi

from swarm.outputs import stack_outputs
from swarm.plan.types import SwarmPlan


def export_outputs(plan: SwarmPlan) -> None:
    for key, value in stack_outputs(plan).items():
        pulumi.export(key, value)
