"""The metric catalog: how each kind is scraped and which metric names it exports.

Dashboards and rules may only name metrics listed here (or recording rules): the test in
tests/monitoring builds the exported set from the plan, so a panel that queries a metric no
placed service exports fails. vLLM renamed metrics across releases: both spellings are listed
and the recording rules read either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where a kind serves Prometheus metrics: `path` on the container's `internal_port`, with a
    bearer token from the generated secret `bearer_secret` when the endpoint needs one."""

    path: str = "/metrics"
    bearer_secret: str | None = None
    bearer_prefix: str = ""
    """Text the endpoint expects before the secret in the token. Prometheus sends a credentials
    file verbatim, so a prefixed token is written to a file of its own when Prometheus starts."""
    port: int | None = None
    """Container port when it is not the service's `internal_port` (a separate metrics port)."""


LITELLM_METRICS_KEY = "litellm-key-prometheus"
"""Prometheus's own LiteLLM virtual key: `litellm_keys.key_id("prometheus")`, spelled out because the
services import this catalog, not the other way round (tests/monitoring checks they agree)."""

# Qdrant guards every endpoint but its health probes with the API key once one is configured.
# LiteLLM asks for a key on /metrics once a master key is set (`require_auth_for_metrics_endpoint`
# defaults to true) and accepts only keys that start with `sk-`.
ENDPOINTS: Mapping[str, MetricsEndpoint] = {
    "vllm": MetricsEndpoint(),
    "swarm-router": MetricsEndpoint(),
    "swarm-autotuner": MetricsEndpoint(),
    "litellm": MetricsEndpoint(bearer_secret=LITELLM_METRICS_KEY, bearer_prefix="sk-"),  # litellm_keys.KEY_PREFIX
    "qdrant": MetricsEndpoint(bearer_secret="qdrant-api-key"),
    "node-exporter": MetricsEndpoint(),
    "gpu-exporter": MetricsEndpoint(),
    "log-shipper": MetricsEndpoint(),
    "loki": MetricsEndpoint(),
    "alertmanager": MetricsEndpoint(),
    "grafana": MetricsEndpoint(),
    "prometheus": MetricsEndpoint(),
}

VLLM_CURRENT = (
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions_total", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total",
)
VLLM_CURRENT_HISTOGRAMS = (
    "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
)
# Names older releases serve (hidden one minor release after deprecation, then removed).
VLLM_DEPRECATED = ("vllm:gpu_cache_usage_perc",)
VLLM_DEPRECATED_HISTOGRAMS = ("vllm:time_per_output_token_seconds",)

_ROUTER = (
    "swarm_router_requests_total", "swarm_router_retries_total", "swarm_router_stream_errors_total",
    "swarm_router_poison_requests_total", "swarm_router_backend_in_flight", "swarm_router_backend_limit",
    "swarm_router_backend_healthy", "swarm_router_backend_breaker_state", "swarm_router_backend_vllm_waiting",
    "swarm_router_backend_vllm_kv_usage", "swarm_router_queue_depth",
)
_ROUTER_HISTOGRAMS = ("swarm_router_ttft_seconds", "swarm_router_added_latency_seconds",
                      "swarm_router_queue_wait_seconds")
_AUTOTUNER = tuple("swarm_autotuner_" + name for name in (
    "limit", "safe_limit", "limit_applied", "recommended_max_num_seqs", "decisions_total",
    "router_push_failures_total", "dry_run", "ttft_target_seconds", "vllm_up", "vllm_ttft_seconds",
    "vllm_inter_token_seconds", "vllm_running", "vllm_waiting", "vllm_kv_cache_usage_ratio",
    "vllm_preemptions_total", "gpu_up", "gpu_utilization_ratio", "gpu_memory_used_ratio",
    "gpu_temperature_celsius", "gpu_temperature_ceiling_celsius", "gpu_power_ratio", "gpu_thermal_throttle",
    "gpu_power_throttle",
))
# LiteLLM's `prometheus` callback (counters carry the `_total` suffix on the wire).
_LITELLM = (
    "litellm_proxy_total_requests_metric_total", "litellm_proxy_failed_requests_metric_total",
    "litellm_spend_metric_total", "litellm_total_tokens_metric_total", "litellm_input_tokens_metric_total",
    "litellm_output_tokens_metric_total", "litellm_provider_remaining_budget_metric",
    "litellm_deployment_state", "litellm_deployment_failure_responses_total",
)
_LITELLM_HISTOGRAMS = ("litellm_request_total_latency_metric", "litellm_llm_api_latency_metric",
                       "litellm_llm_api_time_to_first_token_metric")
_NODE = (
    "node_cpu_seconds_total", "node_load1", "node_load5", "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes", "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
    "node_filesystem_readonly", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "node_disk_io_time_seconds_total", "node_boot_time_seconds", "node_time_seconds",
)
# utkuozdemir/nvidia_gpu_exporter (nvml flavour): docs/METRICS.md and its golden test outputs.
_GPU = (
    "nvidia_smi_temperature_gpu", "nvidia_smi_utilization_gpu_ratio", "nvidia_smi_memory_used_bytes",
    "nvidia_smi_memory_total_bytes", "nvidia_smi_power_draw_watts", "nvidia_smi_gpu_info",
    "nvidia_smi_fan_speed_ratio", "nvidia_smi_clocks_current_sm_clock_hz",
)
BACKUP_DUMP_GAUGE = "loki_process_custom_backup_last_dump_timestamp_seconds"
"""Set by the log shipper (stage.metrics) to the time of each `postgres-backup: wrote` log line."""
_QDRANT = ("app_info", "collections_total", "collections_vector_total", "rest_responses_total",
           "rest_responses_fail_total")
_PROMETHEUS = ("prometheus_tsdb_lowest_timestamp_seconds", "prometheus_tsdb_head_series",
               "prometheus_rule_evaluation_failures_total", "prometheus_notifications_dropped_total")
_ALERTMANAGER = ("alertmanager_notifications_failed_total", "alertmanager_notifications_total")
_LOKI = ("loki_distributor_lines_received_total", "loki_ingester_memory_streams")


def _histogram(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{name}{suffix}" for name in names for suffix in ("_bucket", "_sum", "_count"))


EXPORTS: Mapping[str, tuple[str, ...]] = {
    "vllm": (*VLLM_CURRENT, *VLLM_DEPRECATED, *_histogram(VLLM_CURRENT_HISTOGRAMS + VLLM_DEPRECATED_HISTOGRAMS)),
    "swarm-router": (*_ROUTER, *_histogram(_ROUTER_HISTOGRAMS)),
    "swarm-autotuner": _AUTOTUNER,
    "litellm": (*_LITELLM, *_histogram(_LITELLM_HISTOGRAMS)),
    "qdrant": _QDRANT,
    "node-exporter": _NODE,
    "gpu-exporter": _GPU,
    "log-shipper": (BACKUP_DUMP_GAUGE,),
    "prometheus": _PROMETHEUS,
    "alertmanager": _ALERTMANAGER,
    "loki": _LOKI,
    "grafana": (),
}
SYNTHETIC = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE")
"""Series Prometheus writes for every target."""


def exported(kinds: Iterable[str], recorded: Iterable[str] = ()) -> frozenset[str]:
    """Every metric name a swarm with these kinds exports, plus recording rules' outputs."""
    return frozenset({*SYNTHETIC, *recorded, *(name for kind in kinds for name in EXPORTS.get(kind, ()))})
