"""Alert and recording rules: every alert the issue lists, each with a firing and a quiet
`promtool test rules` case, checked and run by the real promtool on the rendered files."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from swarm.monitoring import rules
from swarm.plan import SwarmPlan
from tests.monitoring.support import render, require_tool

ISSUE_ALERTS = {
    "GpuTemperatureHigh", "HostMemoryHigh", "ApiErrorRateHigh", "LatencyP95High", "SpendOverBudget",
    "TargetDown", "NodeDown", "VllmQueueGrowing", "VllmKvCacheFull", "RouterBreakerOpen", "DiskFilling",
    "BackupStale",
}


def _alerts(plan: SwarmPlan) -> tuple[rules.Alert, ...]:
    backups = {s.name: s.node for s in plan.of_kind("postgres-backup")}
    return rules.alerts(plan.spec, backups)


def test_prod_has_every_alert_the_issue_lists(prod_plan: SwarmPlan) -> None:
    assert {a.name for a in _alerts(prod_plan)} == ISSUE_ALERTS


def test_every_alert_has_a_firing_and_a_quiet_case(prod_plan: SwarmPlan) -> None:
    for alert in _alerts(prod_plan):
        assert alert.firing and all(case.fires for case in alert.firing), alert.name
        assert not alert.quiet.fires and alert.quiet.series, alert.name
    tests = rules.render_tests(_alerts(prod_plan))
    for alert in ISSUE_ALERTS:
        assert f"name: {alert} fires (1)" in tests and f"name: {alert} stays quiet" in tests


def test_thresholds_are_the_seeds(prod_plan: SwarmPlan) -> None:
    by_name = {a.name: a.expr for a in _alerts(prod_plan) if a.labels.get("scope") != "provider"}
    assert by_name["GpuTemperatureHigh"].endswith("> 80")
    assert by_name["HostMemoryHigh"].endswith("> 0.9")
    assert by_name["ApiErrorRateHigh"].endswith("> 0.01")
    assert "> 5" in by_name["LatencyP95High"]
    assert by_name["SpendOverBudget"].endswith(f"> {1.2 * 140:g}")  # prod budget 140 USD
    assert ">= 0.95" in by_name["VllmKvCacheFull"]


def test_promtool_checks_and_runs_the_rendered_rules(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    out = render(prod_plan, tmp_path, "prometheus/") / "prometheus"
    check = subprocess.run([promtool, "check", "rules", rules.RECORDS_FILE, rules.ALERTS_FILE], cwd=out,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(_alerts(prod_plan))} rules found" in check.stdout
    assert "inconsistency" not in check.stdout + check.stderr  # no two alerts share name and labels
    tested = subprocess.run([promtool, "test", "rules", rules.TESTS_FILE], cwd=out, capture_output=True,
                            text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_quiet_cases_would_catch_an_alert_that_always_fires(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    """Feed each alert its firing input under the quiet expectation: promtool must fail every one,
    so no quiet case passes vacuously (and no firing case expects nothing)."""
    promtool = require_tool("promtool")
    swapped = tuple(replace(a, quiet=replace(a.firing[0], fires=())) for a in _alerts(prod_plan))
    (tmp_path / rules.RECORDS_FILE).write_text(rules.render_records(rules.records(prod_plan.spec)))
    (tmp_path / rules.ALERTS_FILE).write_text(rules.render_alerts(swapped))
    (tmp_path / rules.TESTS_FILE).write_text(rules.render_tests(swapped))
    result = subprocess.run([promtool, "test", "rules", rules.TESTS_FILE], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    failed = {line.split("name: ")[1].split(" stays quiet")[0] for line in (result.stdout + result.stderr).splitlines()
              if "stays quiet" in line and "name: " in line}
    assert failed == ISSUE_ALERTS


def test_promtool_checks_the_rendered_prometheus_config(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    out = render(prod_plan, tmp_path, "prometheus/") / "prometheus"
    result = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=out, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def _promql_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on expressions alone (promql_expr_test), without a rule file."""
    (tmp_path / "expr.test.yml").write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m",
                                                            "tests": tests}))
    return subprocess.run([require_tool("promtool"), "test", "rules", "expr.test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_a_dead_node_exporter_alone_is_a_target_down_not_a_node_down(prod_plan: SwarmPlan, tmp_path: Path) -> None:
    """NodeDown inhibits every other alert of its node, so it must need every target of the node
    down; a node-exporter that died on a node whose services answer is an ordinary TargetDown."""
    rendered = yaml.safe_load(rules.render_alerts(_alerts(prod_plan)))
    expr = {rule["alert"]: rule["expr"] for rule in rendered["groups"][0]["rules"]}
    exporter = ('up{instance="100.72.73.3:9100", job="node-exporter", node="starlord", '
                'service="node-exporter-starlord"}')
    vllm = 'up{instance="100.72.73.3:8000", job="vllm", node="starlord", service="starlord-primary"}'

    def case(vllm_values: str, node_down: list[dict[str, Any]]) -> dict[str, Any]:
        return {"interval": "1m",
                "input_series": [{"series": exporter, "values": "0x10"}, {"series": vllm, "values": vllm_values}],
                "promql_expr_test": [{"expr": expr["NodeDown"], "eval_time": "5m", "exp_samples": node_down}]}

    exporter_only = case("1x10", [])
    exporter_only["promql_expr_test"].append(
        {"expr": expr["TargetDown"], "eval_time": "5m", "exp_samples": [{"labels": exporter, "value": 0}]})
    whole_node = case("0x10", [{"labels": '{node="starlord"}', "value": 0}])
    result = _promql_tests(tmp_path, [exporter_only, whole_node])
    assert result.returncode == 0, result.stdout + result.stderr


def test_provider_spend_is_documented_as_a_sliding_window(prod_plan: SwarmPlan) -> None:
    """The per-provider alert compares `increase(...[period])` with a budget LiteLLM resets per
    window of its own; the text the operator gets must say so."""
    provider = [a for a in _alerts(prod_plan) if a.name == "SpendOverBudget" and a.labels["scope"] == "provider"]
    assert provider
    for alert in provider:
        assert "sliding window" in alert.description and "LiteLLM resets" in alert.description, alert.description
