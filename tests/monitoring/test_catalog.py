"""The metric catalog against the real exporters installed here: the autotuner's registry, and
LiteLLM's `prometheus` callback (the version the image runs, pinned in requirements-dev.txt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families
from swarm_runtime.autotuner.metrics import AutotunerMetrics
from swarm_runtime.autotuner.types import Decision, Reason

from swarm.monitoring.catalog import EXPORTS

_LITELLM_FAMILIES = """
import json
from prometheus_client import REGISTRY
from litellm.integrations.prometheus import PrometheusLogger
PrometheusLogger()
print(json.dumps({m.name: m.type for m in REGISTRY.collect() if m.name.startswith("litellm_")}))
"""


def _wire_names(families: dict[str, str]) -> set[str]:
    """Sample names as a scrape shows them (counters `_total`, histograms `_bucket/_sum/_count`)."""
    names: set[str] = set()
    for name, kind in families.items():
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def test_autotuner_catalog_is_what_the_autotuner_serves() -> None:
    metrics = AutotunerMetrics()
    metrics.observe_decision("b", Decision(limit=4, previous=4, reason=next(iter(Reason)), at=0.0), 4)
    metrics.push_failures.labels("b").inc(0)
    metrics.preemptions.labels("b").inc(0)
    for name in ("limit_applied", "recommended", "ttft_target", "vllm_up", "ttft", "itl", "running",
                 "waiting", "kv"):
        getattr(metrics, name).labels("b").set(0)
    for name in ("gpu_up", "gpu_util", "gpu_mem", "gpu_temp", "gpu_ceiling", "gpu_power", "gpu_thermal",
                 "gpu_power_cap"):
        getattr(metrics, name).labels("b", "0").set(0)
    families = {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}
    created = {name for name in families if name.endswith("_created")}  # client_python's creation stamps
    assert _wire_names({n: t for n, t in families.items() if n not in created}) == set(EXPORTS["swarm-autotuner"])


def test_litellm_catalog_names_exist_in_its_prometheus_callback() -> None:
    result = subprocess.run([sys.executable, "-c", _LITELLM_FAMILIES], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert result.returncode == 0, result.stderr[-2000:]
    served = _wire_names(json.loads(result.stdout.strip().splitlines()[-1]))
    assert set(EXPORTS["litellm"]) <= served, sorted(set(EXPORTS["litellm"]) - served)
