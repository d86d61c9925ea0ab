"""Alertmanager: routes Prometheus's alerts to the receivers in `ai-swarm:alerting`, groups
them by alert and node, and silences a down node's other alerts (swarm/monitoring/alertmanager_config.py)."""

from __future__ import annotations

from collections.abc import Iterator

from swarm.monitoring.alertmanager_config import render_alertmanager, secret_keys
from swarm.plan.types import Healthcheck, Mount, PlannedFile, PulledImage, SecretFile, ServicePlan
from swarm.services.base import PlanContext, service_origin

KIND = "alertmanager"
PORT = 9093
CONFIG_DIR = "/etc/alertmanager"
CONFIG_NAME = "alertmanager.yml"
DATA = "/alertmanager"
# prom/alertmanager v0.28.1: digest pinned in ten public repositories, one noting it was
# "verified as the multi-platform index"; upstream publishes amd64, arm64 and more.
IMAGE = PulledImage("prom/alertmanager", "v0.28.1",
                    "sha256:27c475db5fb156cab31d5c18a4251ac7ed567746a2483ff264516437a39b15ba",
                    frozenset({"amd64", "arm64"}))


def placed(ctx: PlanContext) -> tuple[str, str, int | None] | None:
    found = ctx.first_of(KIND)
    return (found[0], found[1].node, found[1].port) if found else None


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    alerting = ctx.spec.alerting
    for name, service in ctx.services_of(KIND):
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=IMAGE,
            command=(f"--config.file={CONFIG_DIR}/{CONFIG_NAME}", f"--storage.path={DATA}",
                     f"--web.listen-address=:{PORT}", "--cluster.listen-address="),
            healthcheck=Healthcheck(test=("wget", "-q", "--spider", f"http://127.0.0.1:{PORT}/-/healthy")),
            memory_mb=128, cpus=0.25,
            user="65534:65534",
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=DATA, volume=f"ai-swarm-{name}-data", stateful=True),),
            config_dir=CONFIG_DIR,
            files=(PlannedFile(CONFIG_NAME, render_alertmanager(alerting), f"{name}/{CONFIG_NAME}"),),
            secret_files=tuple(SecretFile(key, f"config:{key}") for key in secret_keys(alerting)),
        )
