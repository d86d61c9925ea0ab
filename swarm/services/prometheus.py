"""Prometheus: scrapes every service the plan places that exports metrics, evaluates the alert
and recording rules, and sends alerts to Alertmanager.

It plans in the builder's second phase (`build_after`): the scrape targets are read from the
other services' plans by a pure function (swarm/monitoring/targets.py), so a new kind is
scraped by adding one line to the metric catalog, never by editing this module.

Prometheus sends a bearer credentials file verbatim. A token that needs a prefix before the
generated secret (LiteLLM's `sk-`) is written by the entrypoint, the image's busybox shell, to
the container's tmpfs, readable by Prometheus's user only, before it execs Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from swarm.monitoring.rules import (
    ALERTS_FILE,
    RECORDS_FILE,
    TESTS_FILE,
    alerts,
    records,
    render_alerts,
    render_records,
    render_tests,
)
from swarm.monitoring.targets import (
    PrefixedToken,
    ScrapeTarget,
    bearer_secrets,
    prefixed_tokens,
    scrape_configs,
    scrape_flows,
    scrape_targets,
)
from swarm.plan.types import Flow, Healthcheck, Mount, PlannedFile, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services.base import PlanContext, service_origin

KIND = "prometheus"
PORT = 9090
CONFIG_DIR = "/etc/prometheus"
CONFIG_NAME = "prometheus.yml"
DATA = "/prometheus"
SCRAPE_INTERVAL_S = 15
# prom/prometheus v3.5.0 (LTS): digest pinned in six unrelated public repositories; multi-arch.
IMAGE = PulledImage("prom/prometheus", "v3.5.0",
                    "sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996",
                    frozenset({"amd64", "arm64"}))
BACKUP_KIND = "postgres-backup"
BINARY = "/bin/prometheus"  # the image's own entrypoint


def placed(ctx: PlanContext) -> tuple[str, str, int | None] | None:
    found = ctx.first_of(KIND)
    return (found[0], found[1].node, found[1].port) if found else None


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    """Nothing in phase one: Prometheus needs the other services' plans."""
    return iter(())


def prometheus_config(targets: tuple[ScrapeTarget, ...], node: str) -> dict[str, Any]:
    alertmanagers = [t.address for t in targets if t.job == "alertmanager"]
    config: dict[str, Any] = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": "30s",
                   "scrape_timeout": "10s", "external_labels": {"swarm": "ai-swarm"}},
        "rule_files": [RECORDS_FILE, ALERTS_FILE],
        "scrape_configs": [
            {"job_name": KIND, "static_configs": [{"targets": [f"localhost:{PORT}"],
                                                   "labels": {"node": node, "service": KIND}}]},
            *scrape_configs(targets, SCRAPE_INTERVAL_S),
        ],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]}
    return config


def entrypoint(tokens: tuple[PrefixedToken, ...]) -> tuple[str, ...] | None:
    """The image's entrypoint (None) unless a scrape token must be written first; then a shell
    that writes each one and execs Prometheus with the container command as its arguments."""
    if not tokens:
        return None
    writes = " && ".join(f'token="$(cat {secret_path(t.secret)})" && printf "%s%s" "{t.prefix}" "$token" > {t.path}'
                         for t in tokens)
    return ("/bin/sh", "-c", f'umask 077 && {writes} && exec {BINARY} "$@"', KIND)


def build_after(ctx: PlanContext, services: tuple[ServicePlan, ...]) -> Iterator[ServicePlan]:
    spec = ctx.spec
    ips = {name: node.tailscale_ip for name, node in spec.nodes.items()}
    backups = {s.name: s.node for s in services if s.kind == BACKUP_KIND}
    for name, service in ctx.services_of(KIND):
        targets, unreachable = scrape_targets(services, service.node, ips)
        config = prometheus_config(targets, service.node)
        notes = "".join(f"# not scraped: {u.service} on {u.node}: {u.reason}\n" for u in unreachable)
        alert_rules = alerts(spec, backups)
        files = (
            PlannedFile(CONFIG_NAME, to_yaml(config, "Prometheus configuration (scrape targets from the plan)")
                        + notes, f"{name}/{CONFIG_NAME}"),
            PlannedFile(RECORDS_FILE, render_records(records(spec)), f"{name}/{RECORDS_FILE}"),
            PlannedFile(ALERTS_FILE, render_alerts(alert_rules), f"{name}/{ALERTS_FILE}"),
            PlannedFile(TESTS_FILE, render_tests(alert_rules), f"{name}/{TESTS_FILE}"),
        )
        alerting = spec.alerting
        yield ServicePlan(
            name=name, kind=KIND, node=service.node, origin=service_origin(name),
            image=IMAGE,
            entrypoint=entrypoint(prefixed_tokens(targets)),
            command=(f"--config.file={CONFIG_DIR}/{CONFIG_NAME}", f"--storage.tsdb.path={DATA}",
                     f"--storage.tsdb.retention.time={alerting.metrics_retention_days}d",
                     f"--storage.tsdb.retention.size={alerting.metrics_retention_gb}GB",
                     f"--web.listen-address=:{PORT}"),
            healthcheck=Healthcheck(test=("wget", "-q", "--spider", f"http://127.0.0.1:{PORT}/-/healthy"),
                                    start_period_s=60),
            memory_mb=1536, cpus=1.0,
            user="65534:65534",
            ports=ctx.publish(service.node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=DATA, volume=f"ai-swarm-{name}-data", stateful=True),),
            config_dir=CONFIG_DIR,
            files=files,
            secret_files=tuple(SecretFile(s, f"generated:{s}") for s in bearer_secrets(targets)),
            flows=_flows(name, targets),
        )


def _flows(name: str, targets: Iterable[ScrapeTarget]) -> tuple[Flow, ...]:
    targets = tuple(targets)
    alerts_to = tuple(Flow(source=name, target=t.service, port=t.port, purpose="alerts", cross_node=t.cross_node)
                      for t in targets if t.job == "alertmanager")
    return scrape_flows(name, targets) + alerts_to
