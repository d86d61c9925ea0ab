"""Grafana dashboards as code, built with Grafana's typed `grafana-foundation-sdk` builders.

Each dashboard is a table of panels (title, queries, unit); the builder turns it into the
dashboard model Grafana provisions from files. Queries read recording rules where vLLM's
metric names changed between releases, so the panels work with either spelling.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

PROMETHEUS_UID = "prometheus"
LOKI_UID = "loki"
FOLDER = "AI Swarm"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat", "logs"] = "timeseries"
    width: int = 12


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    panels: tuple[Panel, ...]


def _q(expr: str, legend: str = "") -> tuple[Query, ...]:
    return (Query(expr, legend),)


def _quantiles(prefix: str, legend: str) -> tuple[Query, ...]:
    return tuple(Query(f"{prefix}:p{q}_5m", f"p{q} {legend}") for q in (50, 95, 99))


BOARDS: tuple[Board, ...] = (
    Board("ai-swarm-overview", "System overview", (
        Panel("Targets up", _q("sum(up) / count(up)"), "percentunit", "stat", 6),
        Panel("Firing alerts", _q('count(ALERTS{alertstate="firing"}) or vector(0)'), "short", "stat", 6),
        Panel("API error ratio (5m)", _q("ai_swarm:api_error_ratio:rate5m", "{{api}}"), "percentunit", "stat", 12),
        Panel("CPU busy by node",
              _q('1 - avg by (node) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', "{{node}}"), "percentunit"),
        Panel("Memory used by node",
              _q("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{node}}"), "percentunit"),
        Panel("Disk free",
              _q('node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs"} '
                 "/ node_filesystem_size_bytes", "{{node}} {{mountpoint}}"), "percentunit"),
        Panel("Scrape targets down", _q("up == 0", "{{job}} {{service}} on {{node}}"), "short"),
        Panel("Errors in container logs",
              (Query('{service=~".+"} |~ "(?i)(error|exception|traceback)"'),), "short", "logs", 24),
    )),
    Board("ai-swarm-gpu", "GPU performance", (
        Panel("GPU temperature", _q("nvidia_smi_temperature_gpu", "{{node}} {{uuid}}"), "celsius"),
        Panel("GPU utilisation", _q("nvidia_smi_utilization_gpu_ratio", "{{node}}"), "percentunit"),
        Panel("GPU memory used",
              _q("nvidia_smi_memory_used_bytes / nvidia_smi_memory_total_bytes", "{{node}}"), "percentunit"),
        Panel("GPU power draw", _q("nvidia_smi_power_draw_watts", "{{node}}"), "watt"),
        Panel("Thermal / power throttling (autotuner, NVML)",
              (Query("swarm_autotuner_gpu_thermal_throttle", "thermal {{backend}}"),
               Query("swarm_autotuner_gpu_power_throttle", "power cap {{backend}}")), "short"),
        Panel("KV cache usage", _q("ai_swarm:vllm_kv_cache_usage:ratio", "{{service}}"), "percentunit"),
        Panel("Prompt tokens from the prefix cache",
              _q("ai_swarm:vllm_prefix_cache_hit_ratio:rate5m", "{{service}}"), "percentunit"),
    )),
    Board("ai-swarm-latency", "Request latency", (
        Panel("Time to first token (vLLM)", _quantiles("ai_swarm:vllm_ttft_seconds", "{{service}}"), "s"),
        Panel("Inter-token latency (vLLM)", _quantiles("ai_swarm:vllm_itl_seconds", "{{service}}"), "s"),
        Panel("Time to first token at the router (p95, incl. queueing)",
              _q("ai_swarm:router_ttft_seconds:p95_5m", "router p95"), "s"),
        Panel("Router added latency (p99)",
              _q("histogram_quantile(0.99, sum by (le) (rate(swarm_router_added_latency_seconds_bucket[5m])))",
                 "p99"), "s"),
        Panel("vLLM requests running / waiting",
              (Query("vllm:num_requests_running", "running {{service}}"),
               Query("vllm:num_requests_waiting", "waiting {{service}}")), "short"),
        Panel("LiteLLM request latency (p95)",
              _q("histogram_quantile(0.95, sum by (le) (rate(litellm_request_total_latency_metric_bucket[5m])))",
                 "p95"), "s"),
    )),
    Board("ai-swarm-router", "Router and autotuner", (
        Panel("Concurrency cap vs in flight",
              (Query("swarm_router_backend_limit", "cap {{backend}}"),
               Query("swarm_router_backend_in_flight", "in flight {{backend}}")), "short"),
        Panel("Breaker state (0 closed, 1 half-open, 2 open)",
              _q("swarm_router_backend_breaker_state", "{{backend}}"), "short"),
        Panel("Backend healthy", _q("swarm_router_backend_healthy", "{{backend}}"), "short"),
        Panel("Router queue depth", _q("swarm_router_queue_depth"), "short"),
        Panel("Autotuner limit and safe limit",
              (Query("swarm_autotuner_limit", "limit {{backend}}"),
               Query("swarm_autotuner_safe_limit", "safe {{backend}}")), "short"),
        Panel("Autotuner decisions by reason",
              _q("sum by (backend, reason) (rate(swarm_autotuner_decisions_total[5m]))", "{{backend}} {{reason}}"),
              "ops"),
        Panel("Recommended --max-num-seqs", _q("swarm_autotuner_recommended_max_num_seqs", "{{backend}}"), "short"),
        Panel("Requests by status",
              _q("sum by (status) (rate(swarm_router_requests_total[5m]))", "{{status}}"), "reqps"),
    )),
    Board("ai-swarm-cost", "Cost and model usage", (
        Panel("Hosted-model spend (24h) by provider",
              _q("sum by (api_provider) (increase(litellm_spend_metric_total[24h]))", "{{api_provider}}"),
              "currencyUSD"),
        Panel("Requests by model (LiteLLM)",
              _q("sum by (requested_model) (rate(litellm_proxy_total_requests_metric_total[5m]))",
                 "{{requested_model}}"), "reqps"),
        Panel("Tokens by model (LiteLLM)",
              _q("sum by (model) (rate(litellm_total_tokens_metric_total[5m]))", "{{model}}"), "short"),
        Panel("Local generation tokens/s (vLLM)",
              _q("ai_swarm:vllm_generation_tokens:rate5m", "{{service}}"), "short"),
        Panel("Local prompt tokens/s (vLLM)", _q("ai_swarm:vllm_prompt_tokens:rate5m", "{{service}}"), "short"),
        # LiteLLM's workers share one registry in multiprocess mode: every worker's last value is a
        # series of its own (label `pid`); the lowest is the most spent any worker has seen.
        Panel("Provider budget remaining",
              _q("min by (api_provider) (litellm_provider_remaining_budget_metric)", "{{api_provider}}"),
              "currencyUSD"),
    )),
)


def _panel(panel: Panel, index: int, x: int, y: int) -> timeseries.Panel | stat.Panel | logs.Panel:
    grid = GridPos(h=8, w=panel.width, x=x, y=y)
    if panel.kind == "logs":
        built_logs = (logs.Panel().id(index).title(panel.title).grid_pos(grid)
                      .datasource(DataSourceRef(type_val="loki", uid=LOKI_UID)))
        for n, query in enumerate(panel.queries):
            built_logs = built_logs.with_target(loki.Dataquery().expr(query.expr).ref_id(chr(65 + n)))
        return built_logs
    built: timeseries.Panel | stat.Panel = timeseries.Panel() if panel.kind == "timeseries" else stat.Panel()
    built = built.id(index).title(panel.title).unit(panel.unit).grid_pos(grid).datasource(
        DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID))
    for n, query in enumerate(panel.queries):
        built = built.with_target(prometheus.Dataquery().expr(query.expr).legend_format(query.legend or "__auto")
                                  .ref_id(chr(65 + n)))
    return built


def build_board(board: Board) -> dashboard.Dashboard:
    built = (dashboard.Dashboard(board.title).uid(board.uid).tags(["ai-swarm"]).editable()
             .refresh("30s").time("now-6h", "now").timezone("utc"))
    x = y = 0
    for index, panel in enumerate(board.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        built = built.with_panel(_panel(panel, index, x, y))
        x += panel.width
    return built


def render_board(board: Board) -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build_board(board).build()) + "\n"


def prometheus_queries(boards: tuple[Board, ...] = BOARDS) -> Iterator[tuple[str, str, str]]:
    """(dashboard, panel, expr) of every Prometheus query."""
    for board in boards:
        for panel in board.panels:
            if panel.kind != "logs":
                for query in panel.queries:
                    yield board.title, panel.title, query.expr
