"""Prometheus scrape targets, derived from the other services' plans (a pure function).

A target on Prometheus's own node is reached on the node's private network (`name:port`);
one on another node over the tailnet, at the port the service publishes on its node's
Tailscale address. Each target carries `node` and `service` labels: alert routing, the
node-down inhibition and the dashboards group by them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from swarm.monitoring.catalog import ENDPOINTS
from swarm.plan.types import Flow, ServicePlan, secret_path


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    """The kind: one scrape job per kind."""
    service: str
    node: str
    address: str
    """host:port as Prometheus dials it."""
    port: int
    """The port in the flow (what the tailnet ACL must open)."""
    cross_node: bool
    path: str = "/metrics"
    bearer_secret: str | None = None
    bearer_prefix: str = ""


TOKEN_DIR = "/tmp"
"""Where Prometheus's entrypoint writes a token that needs a prefix (the container's tmpfs)."""


@dataclass(frozen=True)
class PrefixedToken:
    """A bearer token Prometheus cannot read from the secret file as delivered: `prefix` plus the
    secret, written to `path` before Prometheus starts."""

    secret: str
    prefix: str

    @property
    def path(self) -> str:
        return _credentials_file(self.secret, self.prefix)


@dataclass(frozen=True)
class Unreachable:
    """A service Prometheus cannot scrape: on another node without a published port."""

    service: str
    node: str
    reason: str


def scrape_targets(services: Iterable[ServicePlan], prometheus_node: str,
                   tailscale_ips: dict[str, str]) -> tuple[tuple[ScrapeTarget, ...], tuple[Unreachable, ...]]:
    """One target per service of a kind in the catalog, sorted by job then service."""
    targets: list[ScrapeTarget] = []
    missing: list[Unreachable] = []
    for service in services:
        endpoint = ENDPOINTS.get(service.kind)
        if endpoint is None:
            continue
        container_port = endpoint.port or service.internal_port
        if container_port is None:
            missing.append(Unreachable(service.name, service.node, "no metrics port in its plan"))
            continue
        if service.node == prometheus_node:
            address, port, cross = f"{service.name}:{container_port}", container_port, False
        else:
            published = next((p for p in service.ports if p.container == container_port), None)
            if published is None:
                missing.append(Unreachable(service.name, service.node,
                                           f"port {container_port} is not published on the tailnet"))
                continue
            address, port, cross = f"{tailscale_ips[service.node]}:{published.host}", published.host, True
        targets.append(ScrapeTarget(job=service.kind, service=service.name, node=service.node, address=address,
                                    port=port, cross_node=cross, path=endpoint.path,
                                    bearer_secret=endpoint.bearer_secret, bearer_prefix=endpoint.bearer_prefix))
    return tuple(sorted(targets, key=lambda t: (t.job, t.service))), tuple(missing)


def scrape_flows(source: str, targets: Iterable[ScrapeTarget]) -> tuple[Flow, ...]:
    return tuple(Flow(source=source, target=t.service, port=t.port, purpose="metrics scrape",
                      cross_node=t.cross_node) for t in targets)


def scrape_configs(targets: Iterable[ScrapeTarget], scrape_interval_s: int) -> list[dict[str, object]]:
    """`scrape_configs` of prometheus.yml: one job per kind, one static group per target."""
    jobs: dict[str, list[ScrapeTarget]] = {}
    for target in targets:
        jobs.setdefault(target.job, []).append(target)
    configs: list[dict[str, object]] = []
    for job, members in jobs.items():
        first = members[0]
        config: dict[str, object] = {
            "job_name": job,
            "scrape_interval": f"{scrape_interval_s}s",
            "metrics_path": first.path,
            "static_configs": [
                {"targets": [t.address], "labels": {"node": t.node, "service": t.service}} for t in members
            ],
        }
        if first.bearer_secret:
            credentials = _credentials_file(first.bearer_secret, first.bearer_prefix)
            config["authorization"] = {"type": "Bearer", "credentials_file": credentials}
        configs.append(config)
    return configs


def _credentials_file(secret: str, prefix: str) -> str:
    return f"{TOKEN_DIR}/{secret}" if prefix else secret_path(secret)


def bearer_secrets(targets: Iterable[ScrapeTarget]) -> Iterator[str]:
    yield from sorted({t.bearer_secret for t in targets if t.bearer_secret})


def prefixed_tokens(targets: Iterable[ScrapeTarget]) -> tuple[PrefixedToken, ...]:
    """Tokens Prometheus's entrypoint must write before it starts, one per secret."""
    found = {t.bearer_secret: PrefixedToken(t.bearer_secret, t.bearer_prefix)
             for t in targets if t.bearer_secret and t.bearer_prefix}
    return tuple(found[name] for name in sorted(found))
