"""Router config: the issue's minimal YAML, defaults, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from swarm_runtime.router.config import ConfigError, RouterConfig, load_config

MINIMAL = """\
listen: {host: 127.0.0.1, port: 9000}
api_key_env: ROUTER_API_KEY
backends:
  - {name: starlord-primary, url: "http://100.72.73.3:8000", models: [primary]}
  - {name: thanos-backup, url: "http://100.122.12.54:8002", models: [primary]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path


def test_minimal_yaml_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert [b.name for b in cfg.backends] == ["starlord-primary", "thanos-backup"]
    assert cfg.listen.port == 9000 and cfg.api_key_env == "ROUTER_API_KEY"
    assert cfg.admin_key_env == "ROUTER_ADMIN_KEY" and cfg.strategy == "load"
    assert cfg.backends[0].max_concurrency == 64 and cfg.backends[0].api_key_env is None
    assert cfg.queue.max_size == 256 and cfg.retries == 1
    assert cfg.backends[0].token_budget == 2048  # vLLM's default --max-num-batched-tokens
    assert cfg.late_binding.enabled and cfg.late_binding.engine_queue == 1


def test_model_validate_accepts_a_dict() -> None:
    cfg = RouterConfig.model_validate({"backends": [{"name": "a", "url": "http://h:1/", "models": ["m"]}]})
    assert cfg.backends[0].url == "http://h:1"


@pytest.mark.parametrize(("patch", "path"), [
    ("  - {name: x, url: \"http://h:1\", models: [m], surprise: 1}\n", "backends.2.surprise"),
    ("  - {name: x, url: \"ftp://h:1\", models: [m]}\n", "backends.2.url"),
    ("  - {name: x, url: \"http://h:1\", models: []}\n", "backends.2.models"),
    ("  - {name: x, url: \"http://h:1\", models: [m], max_concurrency: 0}\n", "backends.2.max_concurrency"),
    ("  - {name: thanos-backup, url: \"http://h:1\", models: [m]}\n", "duplicate backend name"),
    ("  - {name: x, url: \"http://h:1\", models: [m], token_budget: 0}\n", "backends.2.token_budget"),
    ("queue: {max_size: -1}\n", "queue.max_size"),
    ("late_binding: {engine_queue: -1}\n", "late_binding.engine_queue"),
    ("late_binding: {hold: true}\n", "late_binding.hold"),
    ("timeouts: {idle: 3}\n", "timeouts.idle"),
    ("strategy: random\n", "strategy"),
    ("api_key_env: \"not a name\"\n", "api_key_env"),
])
def test_errors_name_the_key_path(tmp_path: Path, patch: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + patch))
    assert path in str(info.value)


@pytest.mark.parametrize(("text", "needle"), [
    ("backends: [\n", "invalid YAML"),
    ("- a\n- b\n", "mapping"),
    ("listen: {port: 1}\n", "backends"),
])
def test_unreadable_configs(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_config_is_immutable() -> None:
    cfg = RouterConfig.model_validate({"backends": [{"name": "a", "url": "http://h:1", "models": ["m"]}]})
    with pytest.raises(ValidationError):
        cfg.retries = 3  # type: ignore[misc]
