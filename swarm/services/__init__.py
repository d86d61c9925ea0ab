"""The service registry: every kind of the vocabulary (`swarm.kinds`) maps to one module.

Adding a service kind is one module in this folder and one line here (README "Adding a
service"); `tests/swarm/test_registry.py` fails when a kind has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from swarm.services import (
    alertmanager,
    gpt_researcher,
    gpu_exporter,
    grafana,
    litellm,
    log_shipper,
    loki,
    node_exporter,
    open_webui,
    pipelines,
    postgres,
    postgres_backup,
    prometheus,
    qdrant,
    redis,
    searxng,
    sillytavern,
    sillytavern_extras,
    swarm_autotuner,
    swarm_router,
    vllm,
)
from swarm.services.base import PlanContext, ServiceModule

REGISTRY: Mapping[str, ServiceModule] = {
    swarm_router.KIND: swarm_router,
    swarm_autotuner.KIND: swarm_autotuner,
    qdrant.KIND: qdrant,
    open_webui.KIND: open_webui,
    pipelines.KIND: pipelines,
    sillytavern.KIND: sillytavern,
    sillytavern_extras.KIND: sillytavern_extras,
    gpt_researcher.KIND: gpt_researcher,
    searxng.KIND: searxng,
    vllm.KIND: vllm,
    litellm.KIND: litellm,
    postgres.KIND: postgres,
    postgres_backup.KIND: postgres_backup,
    redis.KIND: redis,
    prometheus.KIND: prometheus,
    alertmanager.KIND: alertmanager,
    grafana.KIND: grafana,
    loki.KIND: loki,
    log_shipper.KIND: log_shipper,
    node_exporter.KIND: node_exporter,
    gpu_exporter.KIND: gpu_exporter,
}

__all__ = ["REGISTRY", "PlanContext", "ServiceModule"]
