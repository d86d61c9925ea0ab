"""Rendered runtime configs are accepted by the runtime's own config models."""

from __future__ import annotations

import yaml

from swarm.plan.builder import build_plan
from swarm.stack_config import StackConfig, build_spec


def _files(config: StackConfig) -> dict[str, str]:
    return build_plan(build_spec(config)).files()


def test_autotuner_configs_validate_with_the_runtime_model(prod_config: StackConfig) -> None:
    from swarm_runtime.autotuner.config import parse_config

    files = _files(prod_config)
    tuned = {path for path in files if path.startswith("swarm-autotuner/")}
    assert tuned == {"swarm-autotuner/starlord.yaml", "swarm-autotuner/thanos.yaml"}
    starlord = parse_config(yaml.safe_load(files["swarm-autotuner/starlord.yaml"]))
    assert {t.backend for t in starlord.targets} == {"starlord-primary", "starlord-secondary"}
    assert starlord.router.admin_key_file == "/run/secrets/router-admin-key"
    thanos = parse_config(yaml.safe_load(files["swarm-autotuner/thanos.yaml"]))
    assert thanos.thermal.max_temp_c == 85.0
    assert [(t.initial_limit, t.max_limit) for t in thanos.targets] == [(8, 16)]


def test_router_config_validates_with_the_runtime_model(prod_config: StackConfig) -> None:
    from swarm_runtime.router.config import RouterConfig

    config = RouterConfig.model_validate(yaml.safe_load(_files(prod_config)["swarm-router/router.yaml"]))
    assert config.api_key_file == "/run/secrets/router-api-key"
    assert config.admin_key_file == "/run/secrets/router-admin-key"
    assert [b.name for b in config.backends] == ["starlord-primary", "starlord-secondary", "thanos-backup"]
    backends = {b.name: b for b in config.backends}
    assert str(backends["thanos-backup"].url).rstrip("/") == "http://100.122.12.54:8002"
    assert backends["thanos-backup"].max_concurrency == 8
    # the model the primary path fails over to is served by two GPUs
    assert sum("mistral-7b" in b.models for b in config.backends) == 2
