"""Central logs. Neither Loki nor Alloy has a Debian package or a PyPI validator, so their rendered
content is checked here against the keys read in the upstream sources (grafana/loki
pkg/compactor/config.go, pkg/validation/limits.go, pkg/loki/common/common.go; grafana/alloy
internal/component/loki/process/stages and local/file_match)."""

from __future__ import annotations

import re

import yaml

from swarm.monitoring.catalog import BACKUP_DUMP_GAUGE
from swarm.monitoring.logs import render_alloy
from swarm.plan import SwarmPlan


def test_loki_keeps_logs_for_the_configured_retention(prod_plan: SwarmPlan) -> None:
    config = yaml.safe_load(prod_plan.files()["loki/loki.yml"])
    assert config["limits_config"]["retention_period"] == f"{14 * 24}h"
    compactor = config["compactor"]
    # Loki 3 refuses retention without a delete-request store
    assert compactor["retention_enabled"] is True and compactor["delete_request_store"] == "filesystem"
    assert config["schema_config"]["configs"][0]["schema"] == "v13"
    assert config["schema_config"]["configs"][0]["store"] == "tsdb"
    assert config["common"]["path_prefix"] == "/loki" and config["auth_enabled"] is False
    assert set(config) == {"auth_enabled", "server", "common", "schema_config", "limits_config", "compactor",
                           "analytics"}
    loki = prod_plan.service("loki")
    assert any(m.target == "/loki" and m.stateful for m in loki.mounts)
    assert loki.command == ("-config.file=/etc/loki/loki.yml",)


def _blocks(text: str) -> list[str]:
    return re.findall(r"^([a-z_.]+) (?:\"[a-z_]+\" )?\{", text, flags=re.MULTILINE)


def test_the_shipper_pipeline_tails_labels_and_pushes(prod_plan: SwarmPlan) -> None:
    files = prod_plan.files()
    thanos = files["log-shipper/thanos.alloy"]
    assert _blocks(thanos) == ["logging", "local.file_match", "loki.source.file", "loki.process", "loki.write"]
    assert '"__path__" = "/var/lib/docker/containers/*/*-json.log", "node" = "thanos"' in thanos
    assert 'url = "http://100.96.197.84:3100/loki/api/v1/push"' in thanos  # across the tailnet
    assert 'url = "http://loki:3100/loki/api/v1/push"' in files["log-shipper/oracle.alloy"]  # same node
    for stage in ("stage.json", "stage.labels", "stage.docker", "stage.label_drop", "stage.match",
                  "stage.template", "stage.metrics", "metric.gauge"):
        assert f"{stage} {{" in thanos, stage
    assert thanos.count("{") == thanos.count("}")


def test_the_backup_gauge_is_the_one_the_alert_reads() -> None:
    text = render_alloy("oracle", "http://loki:3100/loki/api/v1/push")
    name = re.search(r'name\s+= "([a-z_]+)"', text)
    assert name is not None and "loki_process_custom_" + name.group(1) == BACKUP_DUMP_GAUGE
    assert 'selector = "{kind=\\"postgres-backup\\"} |= \\"postgres-backup: wrote \\""' in text
    # sprig's toDate/unixEpoch turn the engine's RFC 3339 line time into the gauge's value
    assert 'unixEpoch (toDate \\"2006-01-02T15:04:05Z07:00\\" .timestamp)' in text
    assert 'max_idle_duration = "720h"' in text and 'action            = "set"' in text


def test_the_shipper_reads_logs_read_only_without_the_socket(prod_plan: SwarmPlan) -> None:
    for shipper in prod_plan.of_kind("log-shipper"):
        assert [(m.host_path, m.read_only) for m in shipper.mounts if m.host_path] == [
            ("/var/lib/docker/containers", True)]
        assert not any("docker.sock" in (m.host_path or "") for m in shipper.mounts)
        assert any(m.stateful for m in shipper.mounts)  # positions survive a restart
        assert shipper.command[0] == "run" and "--disable-reporting" in shipper.command
