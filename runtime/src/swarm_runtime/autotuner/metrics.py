"""The autotuner's own Prometheus metrics, in a per-instance registry (no global state)."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from swarm_runtime.autotuner.types import Decision, GpuReading, VllmReading

__all__ = ["AutotunerMetrics"]

_P = "swarm_autotuner_"


class AutotunerMetrics:
    """Every gauge is labelled by ``backend``; GPU gauges also by ``gpu`` (the NVML index)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r, b, g = self.registry, ["backend"], ["backend", "gpu"]
        self.limit = Gauge(_P + "limit", "Concurrency limit computed for the backend", b, registry=r)
        self.safe_limit = Gauge(_P + "safe_limit", "Last limit under which the TTFT target held", b,
                                registry=r)
        self.limit_applied = Gauge(_P + "limit_applied", "1 if the router holds the computed limit", b,
                                   registry=r)
        self.recommended = Gauge(_P + "recommended_max_num_seqs",
                                 "vLLM --max-num-seqs recommended for the next deployment", b, registry=r)
        self.decisions = Counter(_P + "decisions", "Control decisions by reason", ["backend", "reason"],
                                 registry=r)
        self.push_failures = Counter(_P + "router_push_failures", "Failed pushes to the router", b,
                                     registry=r)
        self.dry_run = Gauge(_P + "dry_run", "1 when limits are only reported", registry=r)
        self.ttft_target = Gauge(_P + "ttft_target_seconds", "Configured TTFT target", b, registry=r)
        self.vllm_up = Gauge(_P + "vllm_up", "1 if the last vLLM scrape succeeded", b, registry=r)
        self.ttft = Gauge(_P + "vllm_ttft_seconds", "TTFT quantile over the last interval (NaN: none)", b,
                          registry=r)
        self.itl = Gauge(_P + "vllm_inter_token_seconds", "Median inter-token latency, last interval", b,
                         registry=r)
        self.running = Gauge(_P + "vllm_running", "vLLM requests running", b, registry=r)
        self.waiting = Gauge(_P + "vllm_waiting", "vLLM requests waiting", b, registry=r)
        self.kv = Gauge(_P + "vllm_kv_cache_usage_ratio", "vLLM KV-cache usage (0-1)", b, registry=r)
        self.preemptions = Counter(_P + "vllm_preemptions", "vLLM preemptions seen", b, registry=r)
        self.gpu_up = Gauge(_P + "gpu_up", "1 if NVML answered for the backend's GPU", g, registry=r)
        self.gpu_util = Gauge(_P + "gpu_utilization_ratio", "GPU utilisation (0-1)", g, registry=r)
        self.gpu_mem = Gauge(_P + "gpu_memory_used_ratio", "GPU memory used (0-1)", g, registry=r)
        self.gpu_temp = Gauge(_P + "gpu_temperature_celsius", "GPU temperature", g, registry=r)
        self.gpu_ceiling = Gauge(_P + "gpu_temperature_ceiling_celsius",
                                 "min(slowdown threshold, configured max_temp_c)", g, registry=r)
        self.gpu_power = Gauge(_P + "gpu_power_ratio", "Power draw / enforced limit", g, registry=r)
        self.gpu_thermal = Gauge(_P + "gpu_thermal_throttle", "1 if thermal clock-event bits are set", g,
                                 registry=r)
        self.gpu_power_cap = Gauge(_P + "gpu_power_throttle", "1 if power-cap clock-event bits are set", g,
                                   registry=r)

    def observe_decision(self, backend: str, decision: Decision, safe_limit: int) -> None:
        self.limit.labels(backend).set(decision.limit)
        self.safe_limit.labels(backend).set(safe_limit)
        self.decisions.labels(backend, decision.reason.value).inc()

    def observe_vllm(self, backend: str, reading: VllmReading | None) -> None:
        self.vllm_up.labels(backend).set(0 if reading is None else 1)
        if reading is None:
            return
        self.ttft.labels(backend).set(math.nan if reading.ttft_s is None else reading.ttft_s)
        self.itl.labels(backend).set(math.nan if reading.inter_token_s is None else reading.inter_token_s)
        self.running.labels(backend).set(reading.running)
        self.waiting.labels(backend).set(reading.waiting)
        self.kv.labels(backend).set(reading.kv_cache_usage)
        if reading.preemptions > 0:
            self.preemptions.labels(backend).inc(reading.preemptions)

    def observe_gpu(self, backend: str, gpu_index: int, reading: GpuReading | None, ceiling: float) -> None:
        labels = (backend, str(gpu_index))
        self.gpu_up.labels(*labels).set(0 if reading is None else 1)
        if reading is None:
            return
        self.gpu_util.labels(*labels).set(reading.utilization_pct / 100.0)
        self.gpu_mem.labels(*labels).set(reading.memory_used_frac)
        self.gpu_temp.labels(*labels).set(reading.temperature_c)
        self.gpu_ceiling.labels(*labels).set(ceiling)
        self.gpu_power.labels(*labels).set(math.nan if reading.power_frac is None else reading.power_frac)
        self.gpu_thermal.labels(*labels).set(int(reading.thermal_throttle))
        self.gpu_power_cap.labels(*labels).set(int(reading.power_throttle))

    def render(self) -> bytes:
        return generate_latest(self.registry)
