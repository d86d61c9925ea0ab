"""Alertmanager: receivers from `ai-swarm:alerting`, credentials only as secret files, grouping and
the node-down inhibition; `amtool check-config` on the rendered files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm.errors import SpecError
from swarm.monitoring.alertmanager_config import alertmanager_config
from swarm.plan import SwarmPlan
from tests.monitoring.support import plan_of, render, require_tool

RECEIVERS = {
    "ops-hook": {"kind": "webhook", "url": "https://hooks.example.net/alert", "token_secret": "opsHookToken",
                 "severities": ["critical"]},
    "phone": {"kind": "ntfy", "url": "https://ntfy.example.net/swarm", "token_secret": "ntfyAccessToken"},
    "mail": {"kind": "email", "to": "ops@example.net", "sender": "swarm@example.net",
             "smarthost": "smtp.example.net:587", "username": "swarm", "password_secret": "smtpPassword"},
}


def _with_receivers(values: dict[str, Any]) -> None:
    values["ai-swarm:alerting"] = {**values["ai-swarm:alerting"], "receivers": RECEIVERS}
    for key in ("opsHookToken", "smtpPassword"):
        values[f"ai-swarm:{key}"] = "offline-placeholder-not-a-secret"


def _amtool(plan: SwarmPlan, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    amtool = require_tool("amtool")
    out = render(plan, tmp_path, "alertmanager/")
    return subprocess.run([amtool, "check-config", str(out / "alertmanager" / "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60)


def test_amtool_accepts_the_prod_config(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    result = _amtool(prod_plan, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "2 receivers" in result.stdout


def test_amtool_accepts_webhook_ntfy_and_email_receivers(prod_values: dict[str, Any], tmp_path: Path) -> None:
    plan = plan_of(prod_values, _with_receivers)
    result = _amtool(plan, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout


def test_credentials_are_secret_files_never_in_the_file(prod_values: dict[str, Any]) -> None:
    plan = plan_of(prod_values, _with_receivers)
    alertmanager = plan.service("alertmanager")
    assert {s.source for s in alertmanager.secret_files} == {
        "config:ntfyAccessToken", "config:opsHookToken", "config:smtpPassword"}
    config = yaml.safe_load(alertmanager.files[0].content)
    receivers = {r["name"]: r for r in config["receivers"]}
    hook = receivers["ops-hook"]["webhook_configs"][0]
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/opsHookToken"
    assert receivers["phone"]["webhook_configs"][0]["url"].endswith("/swarm?template=alertmanager")
    assert receivers["mail"]["email_configs"][0]["auth_password_file"] == "/run/secrets/smtpPassword"
    assert "offline-placeholder" not in alertmanager.files[0].content


def test_routes_by_severity_and_groups_by_alert_and_node(prod_values: dict[str, Any]) -> None:
    config = alertmanager_config(plan_of(prod_values, _with_receivers).spec.alerting)
    route = config["route"]
    assert route["group_by"] == ["alertname", "node"] and route["receiver"] == "null"
    by_receiver = {r["receiver"]: r for r in route["routes"]}
    assert by_receiver["ops-hook"]["matchers"] == ['severity=~"critical"']
    assert by_receiver["mail"]["matchers"] == ['severity=~"critical|warning"']
    assert all(r["continue"] for r in route["routes"])


def test_a_down_node_silences_its_other_alerts(prod_plan: SwarmPlan) -> None:
    inhibit = alertmanager_config(prod_plan.spec.alerting)["inhibit_rules"][0]
    assert inhibit == {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['alertname!="NodeDown"'],
                       "equal": ["node"]}


def test_a_receiver_without_its_address_names_the_key(prod_values: dict[str, Any]) -> None:
    prod_values["ai-swarm:alerting"]["receivers"] = {"mail": {"kind": "email", "to": "ops@example.net"}}
    with pytest.raises(SpecError) as caught:
        plan_of(prod_values)
    assert any(i.path.startswith("ai-swarm:alerting.receivers.mail") and "smarthost" in i.message
               for i in caught.value.issues)
