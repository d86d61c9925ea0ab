"""Grafana: provisioned datasources (Prometheus, Loki, Alertmanager) and the dashboards built
with grafana-foundation-sdk (swarm/monitoring/dashboards.py); the admin password and the
secret key are generated and read from files (`GF_*__FILE`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarm.monitoring.dashboards import BOARDS, FOLDER, LOKI_UID, PROMETHEUS_UID, render_board
from swarm.plan.types import Flow, Healthcheck, Mount, PlannedFile, PulledImage, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services import alertmanager, loki
from swarm.services import prometheus as prometheus_module
from swarm.services.base import PlanContext, service_origin

KIND = "grafana"
PORT = 3000
CONFIG_DIR = "/etc/ai-swarm-grafana"
DATA = "/var/lib/grafana"
ADMIN_PASSWORD = "grafana-admin-password"
SECRET_KEY = "grafana-secret-key"
# grafana/grafana 11.6.6 (the dashboards' SDK pin targets the 11.6 schema): digest pinned in a
# public repository's image allow-list test; Grafana publishes amd64 and arm64.
IMAGE = PulledImage("grafana/grafana", "11.6.6",
                    "sha256:f3b7b0bf02f79eca049a9463424f19fc600f70cabbc0d0e4946f810c5d165830",
                    frozenset({"amd64", "arm64"}))


def _link(ctx: PlanContext, node: str, where: tuple[str, str, int | None],
          container_port: int) -> tuple[str, int, bool] | None:
    """(url, flow port, cross-node) of a service as Grafana on `node` reaches it."""
    name, other, published = where
    if other == node:
        return f"http://{name}:{container_port}", container_port, False
    if published is None:
        return None
    return ctx.url(other, published), published, True


def datasources(links: dict[str, tuple[str, int, bool]]) -> dict[str, Any]:
    sources: list[dict[str, Any]] = []
    if "prometheus" in links:
        sources.append({"name": "Prometheus", "uid": PROMETHEUS_UID, "type": "prometheus", "access": "proxy",
                        "url": links["prometheus"][0], "isDefault": True, "editable": False,
                        "jsonData": {"timeInterval": "15s", "httpMethod": "POST"}})
    if "loki" in links:
        sources.append({"name": "Loki", "uid": LOKI_UID, "type": "loki", "access": "proxy",
                        "url": links["loki"][0], "editable": False, "jsonData": {"maxLines": 1000}})
    if "alertmanager" in links:
        sources.append({"name": "Alertmanager", "uid": "alertmanager", "type": "alertmanager", "access": "proxy",
                        "url": links["alertmanager"][0], "editable": False,
                        "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False}})
    return {"apiVersion": 1, "datasources": sources}


def dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{
        "name": "ai-swarm", "folder": FOLDER, "type": "file", "disableDeletion": True, "allowUiUpdates": False,
        "updateIntervalSeconds": 60, "options": {"path": f"{CONFIG_DIR}/dashboards"}}]}


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for name, service in ctx.services_of(KIND):
        node = service.node
        placed = {kind: where for kind, where in (("prometheus", prometheus_module.placed(ctx)),
                                                  ("loki", loki.placed(ctx)),
                                                  ("alertmanager", alertmanager.placed(ctx))) if where is not None}
        ports = {"prometheus": prometheus_module.PORT, "loki": loki.PORT, "alertmanager": alertmanager.PORT}
        links = {kind: link for kind, where in placed.items()
                 if (link := _link(ctx, node, where, ports[kind])) is not None}
        files = (
            PlannedFile("provisioning/datasources/ai-swarm.yml",
                        to_yaml(datasources(links), "Grafana datasources"),
                        f"{name}/provisioning/datasources/ai-swarm.yml"),
            PlannedFile("provisioning/dashboards/ai-swarm.yml", to_yaml(dashboard_provider(), "Grafana dashboards"),
                        f"{name}/provisioning/dashboards/ai-swarm.yml"),
            *(PlannedFile(f"dashboards/{board.uid}.json", render_board(board), f"{name}/dashboards/{board.uid}.json")
              for board in BOARDS),
        )
        yield ServicePlan(
            name=name, kind=KIND, node=node, origin=service_origin(name),
            image=IMAGE,
            command=(),
            healthcheck=Healthcheck(test=("wget", "-q", "--spider", f"http://127.0.0.1:{PORT}/api/health"),
                                    start_period_s=60),
            memory_mb=512, cpus=1.0,
            user="472:472",
            env={
                "GF_SERVER_HTTP_PORT": str(PORT),
                "GF_LOG_MODE": "console",  # the default adds a file under /var/log/grafana: read-only root
                "GF_PATHS_DATA": DATA,
                "GF_PATHS_PROVISIONING": f"{CONFIG_DIR}/provisioning",
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD__FILE": secret_path(ADMIN_PASSWORD),
                "GF_SECURITY_SECRET_KEY__FILE": secret_path(SECRET_KEY),
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
                "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
                "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
                "GF_NEWS_NEWS_FEED_ENABLED": "false",
                "GF_PLUGINS_PREINSTALL_DISABLED": "true",
            },
            ports=ctx.publish(node, PORT, service.port),
            internal_port=PORT,
            mounts=(Mount(target=DATA, volume=f"ai-swarm-{name}-data", stateful=True),),
            config_dir=CONFIG_DIR,
            files=files,
            secret_files=(SecretFile(ADMIN_PASSWORD, f"generated:{ADMIN_PASSWORD}"),
                          SecretFile(SECRET_KEY, f"generated:{SECRET_KEY}")),
            flows=tuple(Flow(source=name, target=placed[kind][0], port=port, purpose=f"{kind} queries",
                             cross_node=cross) for kind, (_, port, cross) in links.items()),
        )
