"""Recording and alert rules, each alert with the unit tests `promtool test rules` runs.

Thresholds come from the seeds (GPU > 80 °C, memory > 90 %, API errors > 1 %, p95 latency
> 5 s, spend > 120 % of budget) plus the operational ones the issue names. Every alert is
declared together with one input where it fires and one where it stays quiet, so a rule
cannot exist without its tests (tests/monitoring checks the pairing and runs promtool).
Dashboards read the recording rules, which accept vLLM's current and deprecated names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarm.model import SwarmSpec
from swarm.monitoring.catalog import BACKUP_DUMP_GAUGE
from swarm.render.yaml_text import to_yaml

ALERTS_FILE = "alerts.rules.yml"
RECORDS_FILE = "records.rules.yml"
TESTS_FILE = "rules.test.yml"

GPU_TEMP_C = 80
MEMORY_RATIO = 0.90
ERROR_RATIO = 0.01
LATENCY_P95_S = 5
SPEND_FACTOR = 1.2
KV_CACHE_RATIO = 0.95
BACKUP_MAX_AGE_H = 26  # a daily dump plus two hours of slack
_FS = 'fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs"'


@dataclass(frozen=True)
class Record:
    name: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """Input series (selector, promtool values notation) and the label sets expected to fire."""

    series: tuple[tuple[str, str], ...]
    eval_time: str
    fires: tuple[Mapping[str, str], ...] = ()
    interval: str = "1m"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    firing: tuple[Case, ...]
    quiet: Case
    labels: Mapping[str, str] = field(default_factory=dict)


def _sel(metric: str, **labels: str) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _target(job: str, node: str, service: str) -> dict[str, str]:
    return {"job": job, "instance": f"{service}:1", "node": node, "service": service}


def records(spec: SwarmSpec) -> tuple[Record, ...]:
    out: list[Record] = [
        Record("ai_swarm:vllm_kv_cache_usage:ratio",
               "max by (node, service, model_name) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)"),
        Record("ai_swarm:api_error_ratio:rate5m",
               '(sum(rate(swarm_router_requests_total{status=~"5.."}[5m])) or vector(0)) '
               "/ sum(rate(swarm_router_requests_total[5m]))",
               {"api": "router"}),
        Record("ai_swarm:api_error_ratio:rate5m",
               '(sum(rate(litellm_proxy_failed_requests_metric_total{exception_status=~"5.."}[5m])) or vector(0)) '
               "/ sum(rate(litellm_proxy_total_requests_metric_total[5m]))", {"api": "litellm"}),
        Record("ai_swarm:router_ttft_seconds:p95_5m",
               "histogram_quantile(0.95, sum by (le) (rate(swarm_router_ttft_seconds_bucket[5m])))"),
        Record("ai_swarm:vllm_generation_tokens:rate5m",
               "sum by (node, service, model_name) (rate(vllm:generation_tokens_total[5m]))"),
        Record("ai_swarm:vllm_prompt_tokens:rate5m",
               "sum by (node, service, model_name) (rate(vllm:prompt_tokens_total[5m]))"),
        # prompt tokens found in vLLM's prefix cache: what the router's prefix affinity saves
        Record("ai_swarm:vllm_prefix_cache_hit_ratio:rate5m",
               "sum by (node, service, model_name) (rate(vllm:prefix_cache_hits_total[5m])) "
               "/ sum by (node, service, model_name) (rate(vllm:prefix_cache_queries_total[5m]))"),
    ]
    for quantile in (50, 95, 99):
        q = f"0.{quantile}"
        out.append(Record(f"ai_swarm:vllm_ttft_seconds:p{quantile}_5m",
                          f"histogram_quantile({q}, sum by (node, service, le) "
                          "(rate(vllm:time_to_first_token_seconds_bucket[5m])))"))
        out.append(Record(f"ai_swarm:vllm_itl_seconds:p{quantile}_5m",
                          f"histogram_quantile({q}, sum by (node, service, le) "
                          "(rate(vllm:inter_token_latency_seconds_bucket[5m]) "
                          "or rate(vllm:time_per_output_token_seconds_bucket[5m])))"))
    if spec.alerting.budget_usd is not None:
        out.append(Record("ai_swarm:hosted_spend_usd:budget_period",
                          f"sum(increase(litellm_spend_metric_total[{spec.alerting.budget_period_days}d]))"))
    # A sliding window of the provider's budget period, not LiteLLM's own window: LiteLLM counts a
    # provider's spend from its first request after the last window expired and starts again from
    # 0 when that window ends. Its remaining-budget gauge would follow those windows, but each
    # worker sets it only when it routes a request to the provider, so it keeps the last window's
    # value after a reset until the next such request (a stale alert on an idle provider).
    for provider in spec.providers.values():
        if provider.budget_usd is not None:
            out.append(Record("ai_swarm:provider_spend_usd:budget_period",
                              f'sum(increase(litellm_spend_metric_total{{api_provider="{provider.kind}"}}'
                              f"[{provider.budget_period}]))", {"api_provider": provider.kind}))
    return tuple(out)


def _router_requests(errors_per_min: int) -> tuple[tuple[str, str], ...]:
    base = _target("swarm-router", "oracle", "swarm-router")
    return ((_sel("swarm_router_requests_total", **base, backend="b", status="200"), "0+100x30"),
            (_sel("swarm_router_requests_total", **base, backend="b", status="502"), f"0+{errors_per_min}x30"))


def _ttft(fast_per_min: int, slow_per_min: int) -> tuple[tuple[str, str], ...]:
    base = _target("swarm-router", "oracle", "swarm-router")
    total = fast_per_min + slow_per_min
    return tuple((_sel("swarm_router_ttft_seconds_bucket", **base, backend="b", le=le), f"0+{n}x30")
                 for le, n in (("1", fast_per_min), ("10", total), ("+Inf", total)))


def _budget_alerts(spec: SwarmSpec) -> Iterator[Alert]:
    spend = _target("litellm", "oracle", "litellm")
    budget = spec.alerting.budget_usd
    if budget is not None:
        limit = SPEND_FACTOR * budget
        yield Alert(
            "SpendOverBudget", f"ai_swarm:hosted_spend_usd:budget_period > {limit:g}", "15m", "warning",
            "Hosted-model spend is above 120 % of the budget",
            f"Spend over the last {spec.alerting.budget_period_days} days exceeds {limit:g} USD "
            f"(budget {budget:g} USD, ai-swarm:alerting.budget_usd).",
            firing=(Case(((_sel("litellm_spend_metric_total", **spend, api_provider="unbudgeted"),
                           f"0+{budget / 10:g}x60"),), "60m", ({},)),),
            quiet=Case(((_sel("litellm_spend_metric_total", **spend, api_provider="unbudgeted"),
                         f"0+{budget / 1000:g}x60"),), "60m"),
            labels={"scope": "total"},
        )
    for provider in spec.providers.values():
        if provider.budget_usd is None:
            continue
        limit = SPEND_FACTOR * provider.budget_usd
        series = _sel("litellm_spend_metric_total", **spend, api_provider=provider.kind)
        yield Alert(
            "SpendOverBudget",
            f'ai_swarm:provider_spend_usd:budget_period{{api_provider="{provider.kind}"}} > {limit:g}',
            "15m", "warning", "Hosted-model spend is above 120 % of the budget",
            f"{provider.kind} spend over the last {provider.budget_period} exceeds {limit:g} USD "
            f"(ai-swarm:providers budget_usd {provider.budget_usd:g}). A sliding window: LiteLLM resets "
            f"the provider's budget every {provider.budget_period} and stops routing to it at 100 %, so "
            "this can fire when spend straddles a reset while LiteLLM's own count stayed within the budget.",
            firing=(Case(((series, f"0+{provider.budget_usd / 10:g}x60"),), "60m",
                         ({"api_provider": provider.kind},)),),
            quiet=Case(((series, f"0+{provider.budget_usd / 1000:g}x60"),), "60m"),
            labels={"scope": "provider", "api_provider": provider.kind},
        )


def _backup_alerts(backups: Mapping[str, str]) -> Iterator[Alert]:
    # The shipper's gauge carries the backup container's own `service`/`node` labels; Prometheus
    # keeps the scrape target's and renames the scraped ones `exported_service`/`exported_node`.
    max_age_s = BACKUP_MAX_AGE_H * 3600
    for service, node in sorted(backups.items()):
        gauge = _sel(BACKUP_DUMP_GAUGE, exported_service=service)
        seen = _sel(BACKUP_DUMP_GAUGE, **_target("log-shipper", node, f"log-shipper-{node}"),
                    exported_service=service, exported_node=node, kind="postgres-backup")
        labels = {"service": service, "node": node}
        lowest = _sel("prometheus_tsdb_lowest_timestamp_seconds", **_target("prometheus", "oracle", "prometheus"))
        yield Alert(
            "BackupStale",
            f"(time() - max(max_over_time({gauge}[3d])) > {max_age_s}) or (sum(absent_over_time({gauge}[3d])) "
            f"and on() (time() - min(prometheus_tsdb_lowest_timestamp_seconds)) > {max_age_s})",
            "30m", "critical", "No PostgreSQL dump for over a day",
            f"{service} on {node} has not logged a finished dump for more than {BACKUP_MAX_AGE_H} h "
            "(runbook: backup.sh once / list).",
            firing=(
                Case(((seen, "0x450"), (lowest, "0x450")), "28h", (labels,), "4m"),
                Case(((lowest, "0x450"),), "28h", (labels,), "4m"),
            ),
            quiet=Case(((seen, "0+240x450"), (lowest, "0x450")), "28h", interval="4m"),
            labels=labels,
        )


def alerts(spec: SwarmSpec, backups: Mapping[str, str]) -> tuple[Alert, ...]:
    """Every alert rule; `backups` maps each postgres-backup service to its node."""
    gpu = {**_target("gpu-exporter", "starlord", "gpu-exporter-starlord"), "uuid": "GPU-0"}
    node = _target("node-exporter", "starlord", "node-exporter-starlord")
    vllm_target = _target("vllm", "starlord", "starlord-primary")
    vllm = {**vllm_target, "engine": "0", "model_name": "m"}
    router = {**_target("swarm-router", "oracle", "swarm-router"), "backend": "starlord-primary"}
    disk = {**node, "device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
    return (
        Alert("GpuTemperatureHigh", f"max by (node, uuid) (nvidia_smi_temperature_gpu) > {GPU_TEMP_C}", "5m",
              "warning", "GPU above 80 °C",
              "GPU {{ $labels.uuid }} on {{ $labels.node }} has been above " f"{GPU_TEMP_C} °C for 5 minutes.",
              firing=(Case(((_sel("nvidia_smi_temperature_gpu", **gpu), "85x20"),), "10m",
                           ({"node": "starlord", "uuid": "GPU-0"},)),),
              quiet=Case(((_sel("nvidia_smi_temperature_gpu", **gpu), "75x20"),), "10m")),
        Alert("HostMemoryHigh",
              f"1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes > {MEMORY_RATIO:g}", "10m",
              "warning", "Host memory above 90 %",
              "{{ $labels.node }} has used more than 90 % of its RAM for 10 minutes.",
              firing=(Case(((_sel("node_memory_MemAvailable_bytes", **node), "5x30"),
                            (_sel("node_memory_MemTotal_bytes", **node), "100x30")), "20m", (node,)),),
              quiet=Case(((_sel("node_memory_MemAvailable_bytes", **node), "50x30"),
                          (_sel("node_memory_MemTotal_bytes", **node), "100x30")), "20m")),
        Alert("ApiErrorRateHigh", f"ai_swarm:api_error_ratio:rate5m > {ERROR_RATIO:g}", "10m", "critical",
              "API error rate above 1 %",
              "More than 1 % of {{ $labels.api }} requests failed with a server error over 5 minutes.",
              firing=(Case(_router_requests(5), "20m", ({"api": "router"},)),),
              quiet=Case(_router_requests(0), "20m")),
        Alert("LatencyP95High",
              f"ai_swarm:router_ttft_seconds:p95_5m > {LATENCY_P95_S} "
              f"or ai_swarm:vllm_ttft_seconds:p95_5m > {LATENCY_P95_S}", "10m", "warning",
              "p95 time to first token above 5 s",
              "p95 time to first token has been above " f"{LATENCY_P95_S} s for 10 minutes "
              "(router, or vLLM {{ $labels.service }}).",
              firing=(Case(_ttft(0, 10), "25m", ({},)),),
              quiet=Case(_ttft(10, 0), "25m")),
        *_budget_alerts(spec),
        Alert("TargetDown", "up == 0", "5m", "warning", "A scrape target is down",
              "{{ $labels.service }} ({{ $labels.job }}) on {{ $labels.node }} has not answered scrapes for 5 minutes.",
              firing=(Case(((_sel("up", **vllm_target), "0x20"),), "10m", (vllm_target,)),
                      # a node-exporter that died on a node that still answers is one target down
                      Case(((_sel("up", **node), "0x20"), (_sel("up", **vllm_target), "1x20")), "10m", (node,))),
              quiet=Case(((_sel("up", **vllm_target), "1x20"),), "10m")),
        # Down only when no target of the node answers: while it fires, Alertmanager inhibits every
        # other alert of the node (alertmanager_config.py), so one dead exporter must not be enough.
        Alert("NodeDown", "max by (node) (up) == 0", "2m", "critical", "A node is unreachable",
              "No scrape target on {{ $labels.node }} answers over the tailnet; its services' alerts are inhibited.",
              firing=(Case(((_sel("up", **node), "0x10"), (_sel("up", **vllm_target), "0x10")), "5m",
                           ({"node": "starlord"},)),),
              quiet=Case(((_sel("up", **node), "0x10"), (_sel("up", **vllm_target), "1x10")), "5m")),
        Alert("VllmQueueGrowing", "vllm:num_requests_waiting > 4 and deriv(vllm:num_requests_waiting[10m]) > 0",
              "5m", "warning", "vLLM queue is growing",
              "{{ $labels.service }} has more than 4 requests waiting and the queue keeps growing.",
              firing=(Case(((_sel("vllm:num_requests_waiting", **vllm), "0+1x30"),), "20m", (vllm,)),),
              quiet=Case(((_sel("vllm:num_requests_waiting", **vllm), "10x30"),), "20m")),
        Alert("VllmKvCacheFull", f"ai_swarm:vllm_kv_cache_usage:ratio >= {KV_CACHE_RATIO:g}", "5m", "warning",
              "vLLM KV cache at 95 % or more",
              "{{ $labels.service }} KV cache has been at least 95 % full for 5 minutes (expect preemptions).",
              # the deprecated name, to prove both spellings are read
              firing=(Case(((_sel("vllm:gpu_cache_usage_perc", **vllm), "0.97x20"),), "10m",
                           ({"node": "starlord", "service": "starlord-primary", "model_name": "m"},)),),
              quiet=Case(((_sel("vllm:kv_cache_usage_perc", **vllm), "0.5x20"),), "10m")),
        Alert("RouterBreakerOpen", "swarm_router_backend_breaker_state == 2", "1m", "warning",
              "Router circuit breaker open",
              "The router stopped sending to {{ $labels.backend }}: its circuit breaker is open.",
              firing=(Case(((_sel("swarm_router_backend_breaker_state", **router), "2x10"),), "5m", (router,)),),
              quiet=Case(((_sel("swarm_router_backend_breaker_state", **router), "0x10"),), "5m")),
        Alert("DiskFilling",
              f"node_filesystem_avail_bytes{{{_FS}}} / node_filesystem_size_bytes < 0.15 "
              f"and predict_linear(node_filesystem_avail_bytes{{{_FS}}}[6h], 86400) < 0", "30m", "warning",
              "Disk filling up",
              "{{ $labels.mountpoint }} on {{ $labels.node }} is below 15 % free and will be full within a day.",
              firing=(Case(((_sel("node_filesystem_avail_bytes", **disk), "14-0.01x90"),
                            (_sel("node_filesystem_size_bytes", **disk), "100x90")), "80m", (disk,)),),
              quiet=Case(((_sel("node_filesystem_avail_bytes", **disk), "14x90"),
                          (_sel("node_filesystem_size_bytes", **disk), "100x90")), "80m")),
        *_backup_alerts(backups),
    )


def _annotate(text: str, labels: Mapping[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)


def render_records(rules: tuple[Record, ...]) -> str:
    group = {"name": "ai-swarm-records", "interval": "30s",
             "rules": [{"record": r.name, "expr": r.expr, **({"labels": dict(r.labels)} if r.labels else {})}
                       for r in rules]}
    return to_yaml({"groups": [group]}, "Prometheus recording rules (swarm/monitoring/rules.py)")


def render_alerts(rules: tuple[Alert, ...]) -> str:
    group = {"name": "ai-swarm-alerts", "rules": [
        {"alert": a.name, "expr": a.expr, "for": a.for_, "labels": {"severity": a.severity, **a.labels},
         "annotations": {"summary": a.summary, "description": a.description}} for a in rules]}
    return to_yaml({"groups": [group]}, "Prometheus alert rules (swarm/monitoring/rules.py)")


def _test(alert: Alert, case: Case, kind: str) -> dict[str, Any]:
    expected = []
    for series_labels in case.fires:
        labels = {**series_labels, "severity": alert.severity, **alert.labels}
        # Annotations see the series' labels only, not the rule's own (as Prometheus templates them).
        expected.append({"exp_labels": labels,
                         "exp_annotations": {"summary": _annotate(alert.summary, series_labels),
                                             "description": _annotate(alert.description, series_labels)}})
    return {"name": f"{alert.name} {kind}", "interval": case.interval,
            "input_series": [{"series": s, "values": v} for s, v in case.series],
            "alert_rule_test": [{"eval_time": case.eval_time, "alertname": alert.name, "exp_alerts": expected}]}


def render_tests(rules: tuple[Alert, ...]) -> str:
    """`promtool test rules` input: for every alert, each firing case and the quiet one."""
    tests = [_test(a, c, f"fires ({i + 1})") for a in rules for i, c in enumerate(a.firing)]
    tests += [_test(a, a.quiet, "stays quiet") for a in rules]
    return to_yaml({"rule_files": [RECORDS_FILE, ALERTS_FILE], "evaluation_interval": "1m", "tests": tests},
                   "promtool test rules: every alert fires on one input and stays quiet on another")
