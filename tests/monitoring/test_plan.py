"""The monitoring containers in the prod plan: placement, scrape targets read from the other
services' plans, flows with their real ports, images for the node's architecture."""

from __future__ import annotations

from typing import Any

import yaml

from swarm.monitoring.targets import scrape_targets
from swarm.plan import SwarmPlan
from swarm.plan.types import PortMapping
from swarm.policy_config import policy_config
from tests.monitoring.support import plan_of

MONITORING = ("prometheus", "alertmanager", "grafana", "loki", "log-shipper", "node-exporter", "gpu-exporter")


def _scrape(plan: SwarmPlan) -> dict[str, dict[str, str]]:
    """job -> {service: address} from the rendered prometheus.yml."""
    config = yaml.safe_load(plan.files()["prometheus/prometheus.yml"])
    return {job["job_name"]: {group["labels"]["service"]: group["targets"][0]
                              for group in job["static_configs"]} for job in config["scrape_configs"]}


def test_central_services_on_oracle_and_agents_on_every_node(prod_plan: SwarmPlan) -> None:
    for kind in ("prometheus", "alertmanager", "grafana", "loki"):
        assert [s.node for s in prod_plan.of_kind(kind)] == ["oracle"], kind
    nodes = set(prod_plan.spec.nodes)
    assert {s.node for s in prod_plan.of_kind("node-exporter")} == nodes
    assert {s.node for s in prod_plan.of_kind("log-shipper")} == nodes
    assert {s.node for s in prod_plan.of_kind("gpu-exporter")} == {"starlord", "thanos"}


def test_every_metrics_source_is_scraped_over_the_tailnet_or_locally(prod_plan: SwarmPlan) -> None:
    jobs = _scrape(prod_plan)
    assert jobs["vllm"] == {"starlord-primary": "100.72.73.3:8000", "starlord-secondary": "100.72.73.3:8001",
                            "thanos-backup": "100.122.12.54:8002"}
    assert jobs["swarm-router"] == {"swarm-router": "swarm-router:9000"}  # same node: private network
    assert jobs["swarm-autotuner"] == {"swarm-autotuner-starlord": "100.72.73.3:9400",
                                       "swarm-autotuner-thanos": "100.122.12.54:9400"}
    assert jobs["litellm"] == {"litellm": "litellm:4000"}
    assert jobs["qdrant"] == {"qdrant": "100.72.73.3:6333"}
    assert set(jobs["node-exporter"]) == {"node-exporter-oracle", "node-exporter-starlord", "node-exporter-thanos"}
    assert jobs["gpu-exporter"] == {"gpu-exporter-starlord": "100.72.73.3:9835",
                                    "gpu-exporter-thanos": "100.122.12.54:9835"}


def test_scrape_credentials_are_secret_files(prod_plan: SwarmPlan) -> None:
    config = yaml.safe_load(prod_plan.files()["prometheus/prometheus.yml"])
    qdrant = next(job for job in config["scrape_configs"] if job["job_name"] == "qdrant")
    assert qdrant["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/qdrant-api-key"}
    prometheus = prod_plan.service("prometheus")
    assert [s.source for s in prometheus.secret_files] == ["generated:litellm-key-prometheus",
                                                           "generated:qdrant-api-key"]
    assert {s.source for s in prod_plan.service("qdrant").secret_files} >= {"generated:qdrant-api-key"}
    assert {s.source for s in prod_plan.service("litellm").secret_files} >= {"generated:litellm-key-prometheus"}


def test_flows_carry_the_port_prometheus_dials(prod_plan: SwarmPlan) -> None:
    flows = {(f.target, f.purpose): f for f in prod_plan.service("prometheus").flows}
    assert flows[("thanos-backup", "metrics scrape")].port == 8002
    assert flows[("thanos-backup", "metrics scrape")].cross_node
    assert flows[("swarm-router", "metrics scrape")].port == 9000
    assert not flows[("swarm-router", "metrics scrape")].cross_node
    assert flows[("alertmanager", "alerts")].port == 9093
    shipper = {f.target: f for f in prod_plan.service("log-shipper-thanos").flows}
    assert shipper["loki"].port == 3100 and shipper["loki"].cross_node
    grafana = {f.target: f.port for f in prod_plan.service("grafana").flows}
    assert grafana == {"prometheus": 9090, "loki": 3100, "alertmanager": 9093}
    # every flow is in the plan's flow list, which the tailnet ACL is generated from
    assert all(f in prod_plan.flows for s in prod_plan.services if s.kind in MONITORING for f in s.flows)


def test_a_new_metrics_kind_needs_no_prometheus_edit(prod_plan: SwarmPlan) -> None:
    """The target function reads plans only: a service on another node without a published port is
    reported as unreachable instead of being dialled at a port nobody listens on."""
    router = prod_plan.service("swarm-router")
    moved = [type(router)(**{**router.__dict__, "node": "thanos", "ports": ()})]
    targets, missing = scrape_targets(moved, "oracle", {"thanos": "100.122.12.54"})
    assert targets == () and [m.service for m in missing] == ["swarm-router"]
    published = [type(router)(**{**router.__dict__, "node": "thanos",
                                 "ports": (PortMapping(9000, 9009, "100.122.12.54"),)})]
    targets, _ = scrape_targets(published, "oracle", {"thanos": "100.122.12.54"})
    assert [(t.address, t.port, t.cross_node) for t in targets] == [("100.122.12.54:9009", 9009, True)]


def test_images_fit_the_nodes_and_stateful_data_is_retained(prod_plan: SwarmPlan) -> None:
    for service in prod_plan.services:
        if service.kind in MONITORING:
            assert prod_plan.spec.nodes[service.node].arch in service.image.platforms
            assert "@sha256:" in service.image.ref
            assert (service.user.split(":")[0] != "0") == (service.kind != "log-shipper"), service.name
    for kind in ("prometheus", "alertmanager", "grafana", "loki"):
        assert any(m.stateful for m in prod_plan.of_kind(kind)[0].mounts), kind
    command = " ".join(prod_plan.service("prometheus").command)
    assert "--storage.tsdb.retention.time=35d" in command and "--storage.tsdb.retention.size=20GB" in command


def test_host_mounts_are_read_only_and_waived_with_a_reason(prod_plan: SwarmPlan) -> None:
    for kind in ("node-exporter", "log-shipper"):
        for service in prod_plan.of_kind(kind):
            host = [m for m in service.mounts if m.host_path]
            assert host and all(m.read_only for m in host)
    config = policy_config(prod_plan)
    assert set(config["container-no-sensitive-host-mounts"]["allow_kinds"]) >= {"node-exporter", "log-shipper"}
    assert "node-exporter" not in config.get("container-non-root-user", {}).get("allow_kinds", [])


def test_without_loki_remote_nodes_ship_nothing(prod_values: dict[str, Any]) -> None:
    prod_values["ai-swarm:services"]["loki"] = {"node": "oracle"}  # private to oracle
    plan = plan_of(prod_values)
    assert [s.node for s in plan.of_kind("log-shipper")] == ["oracle"]


def test_grafana_logs_to_the_console_only(prod_plan) -> None:
    """Grafana's default log mode adds a file under /var/log/grafana, on the read-only root: the file
    writer fails at every start and the error lands in Loki. The console is what Docker collects."""
    assert prod_plan.service("grafana").env["GF_LOG_MODE"] == "console"
