"""The `SwarmPlan` and its parts (plain data). `swarm.plan.builder.build_plan(spec)` builds it
once from a validated spec; everything downstream reads it. Service modules import these types,
so this package does not import the builder (which imports every service module)."""

from __future__ import annotations

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
    "PortMapping", "PulledImage", "SecretFile", "ServicePlan", "SwarmPlan",
]
