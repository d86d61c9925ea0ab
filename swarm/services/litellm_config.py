"""LiteLLM's `config.yaml` and entrypoint, rendered from the stack model (pure functions).

- Local models: one model group per served model name, through `swarm-router` (which does
  the per-backend load balancing, health and failover between vLLM instances).
- Hosted models: one deployment per (model, API key); Gemini's two keys share one model
  group, so LiteLLM spreads requests over both and cools a rate-limited key down.
- Fallbacks: each local model -> local models served on other nodes -> hosted models,
  cheapest first.
- The seeds' cost cascade ("simple work goes to the free tier first") is the model group
  `swarm-auto`: local models at `order: 1`, free/cheap hosted tiers at higher orders; LiteLLM
  picks the lowest order that is healthy and falls through the orders on failure.
- Budgets: per-provider spend caps (provider budget routing, state in Redis), default and
  maximum budgets for generated keys. Secrets appear only as `os.environ/` references,
  filled by the entrypoint from /run/secrets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swarm.model import SwarmSpec
from swarm.plan.types import secret_path
from swarm.services.litellm_keys import KEY_PREFIX

CASCADE_GROUP = "swarm-auto"
# Cost rank of hosted providers (lower is cheaper); the cascade uses the free/cheap tiers only.
COST_RANK = {"gemini": 2, "openrouter": 3, "openai": 4, "anthropic": 5}
CASCADE_PROVIDERS = frozenset({"gemini", "openrouter"})

MASTER_KEY = "litellm-master-key"
ROUTER_KEY_ENV = "SWARM_ROUTER_API_KEY"

# Measured by bench/gateway_path.py (2026-11-30, the 2-core build machine shared by the client,
# the fakes, the router and LiteLLM): one LiteLLM worker saturated near 46 non-streaming chat
# completions/s, well below the ~120 req/s once assumed; 130 req/s then needs every core of oracle.
PER_WORKER_RPS = 46.0
TARGET_RPS = 130.0  # the seeds' throughput target
WORKER_HEADROOM = 0.7  # run a worker at most at 70 % of its saturation


def workers_for(target_rps: float, per_worker_rps: float, cores: int) -> int:
    """Workers needed to carry `target_rps` with headroom, never more than the node's cores."""
    return max(1, min(cores, math.ceil(target_rps / (per_worker_rps * WORKER_HEADROOM))))


def env_name(config_key: str) -> str:
    """`geminiApiKeyAlt` -> `GEMINI_API_KEY_ALT` (the variable the entrypoint exports)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", config_key).upper()


@dataclass(frozen=True)
class Backends:
    """Where LiteLLM reaches its dependencies (URLs and host names as seen from its container)."""

    router_url: str
    redis_host: str
    redis_port: int
    postgres_host: str
    postgres_port: int
    postgres_user: str
    postgres_db: str


def local_models(spec: SwarmSpec) -> list[str]:
    """Served model names, in the order deployments are configured."""
    return list(dict.fromkeys(d.model for d in spec.inference.values()))


def hosted_models(spec: SwarmSpec, embedding: bool = False) -> list[tuple[str, str]]:
    """(provider kind, model) of every hosted chat (or embedding) model, cheapest provider first."""
    ranked = sorted(spec.providers.values(), key=lambda p: COST_RANK[p.kind])
    return list(dict.fromkeys((p.kind, model) for p in ranked
                              for model in (p.embedding_models if embedding else p.models)))


def embedding_models(spec: SwarmSpec) -> list[tuple[str, str]]:
    """(provider kind, model) of every hosted embedding model, cheapest provider first."""
    return hosted_models(spec, embedding=True)


def local_fallbacks(spec: SwarmSpec, model: str) -> list[str]:
    """Local models on nodes that do not serve `model`: a different failure domain first."""
    nodes = {d.node for d in spec.inference.values() if d.model == model}
    return [other for other in local_models(spec) if other != model
            and any(d.node not in nodes for d in spec.inference.values() if d.model == other)]


def _context(spec: SwarmSpec, model: str) -> int:
    return min(d.max_model_len for d in spec.inference.values() if d.model == model)


def _local_entry(spec: SwarmSpec, model_name: str, served: str, backends: Backends,
                 order: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": f"openai/{served}",
        "api_base": f"{backends.router_url}/v1",
        "api_key": f"os.environ/{ROUTER_KEY_ENV}",
        "timeout": 300,
        "stream_timeout": 60,
    }
    if order is not None:
        params["order"] = order
    return {"model_name": model_name, "litellm_params": params,
            "model_info": {"mode": "chat", "max_input_tokens": _context(spec, served),
                           "input_cost_per_token": 0.0, "output_cost_per_token": 0.0}}


def _hosted_entries(spec: SwarmSpec, model_name: str, kind: str, model: str,
                    order: int | None = None) -> list[dict[str, Any]]:
    keys = [k for p in spec.providers.values() if p.kind == kind and model in (*p.models, *p.embedding_models)
            for k in p.api_key_secrets]
    entries = []
    for key in dict.fromkeys(keys):
        params: dict[str, Any] = {"model": model, "api_key": f"os.environ/{env_name(key)}", "timeout": 120}
        if order is not None:
            params["order"] = order
        entries.append({"model_name": model_name, "litellm_params": params})
    return entries


def model_list(spec: SwarmSpec, backends: Backends) -> list[dict[str, Any]]:
    entries = [_local_entry(spec, name, name, backends) for name in local_models(spec)]
    for kind, model in hosted_models(spec):
        entries += _hosted_entries(spec, model, kind, model)
    for kind, model in embedding_models(spec):
        hosted = _hosted_entries(spec, model, kind, model)
        entries += [{**entry, "model_info": {"mode": "embedding"}} for entry in hosted]
    # The cost cascade: free local capacity first, then the free/cheap hosted tiers.
    entries += [_local_entry(spec, CASCADE_GROUP, name, backends, order=1) for name in local_models(spec)]
    for kind, model in hosted_models(spec):
        if kind in CASCADE_PROVIDERS:
            entries += _hosted_entries(spec, CASCADE_GROUP, kind, model, order=COST_RANK[kind])
    return entries


def litellm_config(spec: SwarmSpec, backends: Backends) -> dict[str, Any]:
    hosted = [model for _, model in hosted_models(spec)]
    # Fresh lists per entry: a shared list would be written as a YAML anchor and alias.
    fallbacks = [{name: [*local_fallbacks(spec, name), *hosted]} for name in local_models(spec)]
    budgets = {p.kind: {"budget_limit": p.budget_usd, "time_period": p.budget_period}
               for p in spec.providers.values() if p.budget_usd is not None}
    redis = {"redis_host": "os.environ/REDIS_HOST", "redis_port": "os.environ/REDIS_PORT",
             "redis_password": "os.environ/REDIS_PASSWORD"}
    router_settings: dict[str, Any] = {
        "routing_strategy": "simple-shuffle",
        "num_retries": 1,
        "timeout": 300,
        "allowed_fails": 3,
        "cooldown_time": 30,
        # Off: counting every prompt's tokens cost ~10 ms of TTFT here (bench/gateway_path.py);
        # an over-long prompt is refused by vLLM and `context_window_fallbacks` take it.
        "enable_pre_call_checks": False,
        **redis,
    }
    if budgets:
        router_settings["provider_budget_config"] = budgets
    return {
        "model_list": model_list(spec, backends),
        "litellm_settings": {
            "callbacks": ["prometheus"],  # /metrics for Prometheus (swarm/monitoring)
            "drop_params": True,
            "request_timeout": 300,
            "turn_off_message_logging": True,
            "fallbacks": fallbacks,
            "context_window_fallbacks": [{name: list(hosted)} for name in local_models(spec)] if hosted else [],
            "cache": True,
            "cache_params": {"type": "redis", "host": "os.environ/REDIS_HOST", "port": "os.environ/REDIS_PORT",
                             "password": "os.environ/REDIS_PASSWORD", "ttl": 3600, "namespace": "litellm.cache"},
            "default_key_generate_params": {"max_budget": 10.0, "budget_duration": "30d"},
            "upperbound_key_generate_params": {"max_budget": 200.0, "budget_duration": "30d"},
        },
        "router_settings": router_settings,
        "general_settings": {
            "master_key": "os.environ/LITELLM_MASTER_KEY",
            "database_url": "os.environ/DATABASE_URL",
            "database_connection_pool_limit": 10,
            "proxy_batch_write_at": 60,
            "store_model_in_db": False,
        },
    }


def secret_env(spec: SwarmSpec, router_key: str, redis_password: str) -> list[tuple[str, str]]:
    """(variable, secret file name) the entrypoint exports, provider keys included."""
    pairs = [(ROUTER_KEY_ENV, router_key), ("REDIS_PASSWORD", redis_password)]
    return pairs + [(env_name(key), key) for key in provider_keys(spec)]


def provider_keys(spec: SwarmSpec) -> list[str]:
    return list(dict.fromkeys(key for p in spec.providers.values() for key in p.api_key_secrets))


METRICS_DIR = "/tmp/litellm-metrics"


def render_entrypoint(exports: Iterable[tuple[str, str]], postgres_password: str, backends: Backends,
                      config_path: str, port: int, workers: int, register_script: str | None = None) -> str:
    """Exports each secret from its file into LiteLLM's own process only, then execs it."""
    lines = [
        "#!/bin/sh",
        "# Generated by ai-swarm (swarm/services/litellm_config.py). LiteLLM reads credentials only from",
        "# the environment (`os.environ/` in config.yaml): they are exported here from /run/secrets into",
        "# this process, so they never appear in the container's configuration or in `docker inspect`.",
        "set -eu",
        f'LITELLM_MASTER_KEY="{KEY_PREFIX}$(cat {secret_path(MASTER_KEY)})"',
        "export LITELLM_MASTER_KEY",
    ]
    for variable, name in exports:
        lines += [f'{variable}="$(cat {secret_path(name)})"', f"export {variable}"]
    url = (f"postgresql://{backends.postgres_user}:$(cat {secret_path(postgres_password)})"
           f"@{backends.postgres_host}:{backends.postgres_port}/{backends.postgres_db}")
    lines += [
        f'DATABASE_URL="{url}"',
        "export DATABASE_URL",
        # one metrics registry across the uvicorn workers (prometheus-client's multiprocess mode)
        f'PROMETHEUS_MULTIPROC_DIR="{METRICS_DIR}"',
        "export PROMETHEUS_MULTIPROC_DIR",
        f'rm -rf "{METRICS_DIR}" && mkdir -p "{METRICS_DIR}"',
        # registers the apps' keys once the proxy is live
        *([f"python3 {register_script} &"] if register_script else []),
        f"exec litellm --config {config_path} --host 0.0.0.0 --port {port} --num_workers {workers}",
    ]
    return "\n".join(lines) + "\n"
