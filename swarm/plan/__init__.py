"""Build the `SwarmPlan` once from a validated spec; everything downstream reads it."""

from __future__ import annotations

from swarm.plan.builder import build_plan
from swarm.plan.types import (
    BuiltImage,
    Endpoint,
    Flow,
    GpuRequest,
    Healthcheck,
    Mount,
    NodeMemory,
    PlannedFile,
    PortMapping,
    PulledImage,
    SecretFile,
    ServicePlan,
    SwarmPlan,
)

__all__ = [
    "BuiltImage", "Endpoint", "Flow", "GpuRequest", "Healthcheck", "Mount", "NodeMemory", "PlannedFile",
    "PortMapping", "PulledImage", "SecretFile", "ServicePlan", "SwarmPlan", "build_plan",
]
