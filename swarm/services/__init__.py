"""The service registry: every kind of the vocabulary (`swarm.kinds`) maps to one module.

Adding a service kind is one module in this folder and one line here (README "Adding a
service"); `tests/swarm/test_registry.py` fails when a kind has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarm.services import swarm_autotuner, swarm_router
from swarm.services.base import PlanContext, ServiceModule

REGISTRY: Mapping[str, ServiceModule] = {
    swarm_router.KIND: swarm_router,
    swarm_autotuner.KIND: swarm_autotuner,
}

__all__ = ["REGISTRY", "PlanContext", "ServiceModule"]
