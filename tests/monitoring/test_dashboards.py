"""Grafana: dashboards built with grafana-foundation-sdk, provisioned datasources, and every
panel's query naming only metrics something in the planned swarm exports (either vLLM spelling)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from swarm.monitoring import catalog, rules
from swarm.monitoring.dashboards import BOARDS, prometheus_queries
from swarm.plan import SwarmPlan
from tests.monitoring.support import require_tool

_FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, label matchers, grouping clauses, ranges,
    durations and function names removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if following.startswith("(") or match.group() in _FUNCTIONS_AND_KEYWORDS:
            continue
        if text[:match.start()].endswith((".", "e")) and match.group().isdigit():
            continue
        names.add(match.group())
    return names


def exported(plan: SwarmPlan) -> frozenset[str]:
    recorded = {r.name for r in rules.records(plan.spec)}
    return catalog.exported({s.kind for s in plan.services} | {"prometheus"}, recorded)


def test_the_name_extractor_sees_metrics_and_skips_the_rest() -> None:
    expr = ('sum by (backend, reason) (rate(swarm_autotuner_decisions_total{job="x"}[5m])) '
            '/ on(node) group_left vllm:num_requests_waiting > 0.5 or vector(0)')
    assert metric_names(expr) == {"swarm_autotuner_decisions_total", "vllm:num_requests_waiting"}


def test_every_panel_queries_metrics_the_swarm_exports(prod_plan: SwarmPlan) -> None:
    available = exported(prod_plan)
    queries = list(prometheus_queries())
    assert len(queries) >= 25
    for board, panel, expr in queries:
        names = metric_names(expr)
        assert names, f"{board} / {panel}: no metric in {expr!r}"
        unknown = names - available
        assert not unknown, f"{board} / {panel}: {sorted(unknown)} is exported by nothing in the plan"


def test_a_panel_on_an_unplaced_kind_is_caught(prod_plan: SwarmPlan) -> None:
    kinds = {s.kind for s in prod_plan.services} - {"litellm"}
    available = catalog.exported(kinds, {r.name for r in rules.records(prod_plan.spec)})
    litellm_panels = [expr for _, _, expr in prometheus_queries() if "litellm_" in expr]
    assert litellm_panels and all(metric_names(expr) - available for expr in litellm_panels)


def test_recording_rules_accept_old_and_new_vllm_names(prod_plan: SwarmPlan) -> None:
    records = {r.name: r.expr for r in rules.records(prod_plan.spec)}
    assert {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"} <= metric_names(
        records["ai_swarm:vllm_kv_cache_usage:ratio"])
    itl = metric_names(records["ai_swarm:vllm_itl_seconds:p95_5m"])
    assert {"vllm:inter_token_latency_seconds_bucket", "vllm:time_per_output_token_seconds_bucket"} == itl
    for expr in records.values():
        assert metric_names(expr) <= exported(prod_plan), expr


def test_the_dashboards_issue_lists_are_provisioned(prod_plan: SwarmPlan) -> None:
    files = prod_plan.files()
    titles = {json.loads(files[f"grafana/dashboards/{b.uid}.json"])["title"] for b in BOARDS}
    assert titles == {"System overview", "GPU performance", "Request latency", "Router and autotuner",
                      "Cost and model usage"}
    latency = json.loads(files["grafana/dashboards/ai-swarm-latency.json"])
    exprs = [t["expr"] for p in latency["panels"] for t in p["targets"]]
    for quantile in ("p50", "p95", "p99"):
        assert f"ai_swarm:vllm_ttft_seconds:{quantile}_5m" in exprs
        assert f"ai_swarm:vllm_itl_seconds:{quantile}_5m" in exprs
    for board in BOARDS:
        model = json.loads(files[f"grafana/dashboards/{board.uid}.json"])
        assert model["uid"] == board.uid and model["schemaVersion"] >= 39
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)) and all(p["gridPos"]["w"] <= 24 for p in model["panels"])
        assert all(t["refId"] for p in model["panels"] for t in p["targets"])


def test_datasources_point_at_the_planned_services(prod_plan: SwarmPlan) -> None:
    files = prod_plan.files()
    provisioned = yaml.safe_load(files["grafana/provisioning/datasources/ai-swarm.yml"])
    sources = {d["uid"]: d for d in provisioned["datasources"]}
    assert sources["prometheus"]["url"] == "http://prometheus:9090" and sources["prometheus"]["isDefault"]
    assert sources["loki"]["url"] == "http://loki:3100"
    assert sources["alertmanager"]["url"] == "http://alertmanager:9093"
    provider = yaml.safe_load(files["grafana/provisioning/dashboards/ai-swarm.yml"])["providers"][0]
    assert provider["options"]["path"] == "/etc/ai-swarm-grafana/dashboards"


def test_admin_password_is_generated_and_read_from_a_file(prod_plan: SwarmPlan) -> None:
    grafana = prod_plan.service("grafana")
    assert {s.source for s in grafana.secret_files} == {"generated:grafana-admin-password",
                                                        "generated:grafana-secret-key"}
    assert grafana.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana-admin-password"
    assert not any("PASSWORD" in key and not key.endswith("__FILE") for key in grafana.env)
    assert {f.name for f in grafana.files} >= {"provisioning/datasources/ai-swarm.yml",
                                                "dashboards/ai-swarm-overview.json"}


def test_litellm_gauges_show_one_line_per_provider_not_per_worker(tmp_path: Path) -> None:
    """LiteLLM's workers write one registry in prometheus-client's multiprocess mode, so each gauge
    arrives once per worker (label `pid`); the panel must fold them into one line per provider."""
    gauge = "litellm_provider_remaining_budget_metric"
    panels = [expr for _, _, expr in prometheus_queries() if gauge in metric_names(expr)]
    assert panels
    base = 'instance="litellm:4000", job="litellm", node="oracle", service="litellm", api_provider="gemini"'
    series = [{"series": f'{gauge}{{{base}, pid="{pid}"}}', "values": f"{value}x10"}
              for pid, value in (("11", 30), ("12", 25))]
    tests = [{"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": '{api_provider="gemini"}', "value": 25}]}
        for expr in panels]}]
    (tmp_path / "panels.test.yml").write_text(yaml.safe_dump({"rule_files": [], "tests": tests}))
    result = subprocess.run([require_tool("promtool"), "test", "rules", "panels.test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
