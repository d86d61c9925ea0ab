"""Loki: central log store on the node the stack places it on (oracle), fed by every node's
log shipper; retention from `ai-swarm:alerting.logs_retention_days`, data on a retained volume."""

from __future__ import annotations

from collections.abc import Iterator

from swarm.monitoring.logs import LOKI_DATA, LOKI_PORT, render_loki
from swarm.plan.types import Healthcheck, Mount, PlannedFile, PulledImage, ServicePlan
from swarm.services.base import PlanContext, service_origin

KIND = "loki"
PORT = LOKI_PORT
CONFIG_DIR = "/etc/loki"
CONFIG_NAME = "loki.yml"
# grafana/loki 3.5.3: the same digest pinned in four unrelated public repositories; multi-arch.
IMAGE = PulledImage("grafana/loki", "3.5.3",
                    "sha256:3165cecce301ce5b9b6e3530284b080934a05cd5cafac3d3d82edcb887b45ecd",
                    frozenset({"amd64", "arm64"}))


def placed(ctx: PlanContext) -> tuple[str, str, int | None] | None:
    """(service name, node, published host port) of Loki, if the stack places one."""
    found = ctx.first_of(KIND)
    return (found[0], found[1].node, found[1].port) if found else None


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=IMAGE,
            command=(f"-config.file={CONFIG_DIR}/{CONFIG_NAME}",),
            # distroless image (no shell, no HTTP client): the binary answering is the probe here,
            # Prometheus's `up` for job loki is the real one
            healthcheck=Healthcheck(test=("/usr/bin/loki", "-version")),
            memory_mb=1024, cpus=1.0,
            user="10001:10001",
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=LOKI_DATA, volume=f"ai-swarm-{name}-data", stateful=True),),
            config_dir=CONFIG_DIR,
            files=(PlannedFile(CONFIG_NAME, render_loki(ctx.spec.alerting.logs_retention_days),
                               f"{name}/{CONFIG_NAME}"),),
        )
