"""The router's configuration model. Importing this module starts nothing.

Every model forbids unknown keys; :func:`load_config` turns validation errors into one
:class:`ConfigError` whose lines name the key path (``backends.1.url: ...``). Secrets never
live here: only the *names* of environment variables that hold them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from swarm_runtime.config_errors import validation_lines

from .twin import DEFAULT_TOKEN_BUDGET

__all__ = [
    "AffinityConfig",
    "BackendConfig",
    "BreakerConfig",
    "ConfigError",
    "HealthConfig",
    "LateBindingConfig",
    "ListenConfig",
    "QueueConfig",
    "RouterConfig",
    "TimeoutsConfig",
    "format_validation_error",
    "load_config",
]

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Strict):
    """Where the router listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65_535)


class BackendConfig(_Strict):
    """One vLLM server (``vllm serve``) the router may send requests to."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    url: str
    models: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    max_concurrency: int = Field(default=64, ge=1, le=100_000)
    """Initial per-backend cap on in-flight requests; the autotuner changes it at run time."""
    api_key_env: EnvName | None = None
    """Environment variable holding this backend's ``vllm serve --api-key``, if it uses one."""
    api_key_file: str | None = None
    """File holding this backend's API key (e.g. /run/secrets/vllm-api-key); wins over the env var."""
    token_budget: int = Field(default=DEFAULT_TOKEN_BUDGET, ge=1, le=10_000_000)
    """The engine's tokens per step (``vllm serve --max-num-batched-tokens``); the router's replay of it
    uses this (runtime/ROUTING.md)."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http:// or https:// URL such as http://100.72.73.3:8000")
        return value.rstrip("/")


class QueueConfig(_Strict):
    """The bounded wait queue used when every backend for a model is at its cap."""

    max_size: int = Field(default=256, ge=0, le=100_000)
    deadline_s: PositiveSeconds = 30.0
    retry_after_s: int = Field(default=1, ge=1, le=3600)


class TimeoutsConfig(_Strict):
    """Upstream timeouts. ``first_byte_s`` covers a whole non-streaming generation."""

    connect_s: PositiveSeconds = 3.0
    first_byte_s: PositiveSeconds = 300.0
    idle_s: PositiveSeconds = 60.0


class HealthConfig(_Strict):
    """Active health checks (``GET /health``) and metric scrapes (``GET /metrics``)."""

    interval_s: PositiveSeconds = 2.0
    timeout_s: PositiveSeconds = 1.0
    unhealthy_after: int = Field(default=2, ge=1, le=100)
    healthy_after: int = Field(default=1, ge=1, le=100)
    scrape_interval_s: PositiveSeconds = 1.0
    stale_after_s: PositiveSeconds = 5.0


class BreakerConfig(_Strict):
    """Per-backend circuit breaker fed by request outcomes (passive failure detection)."""

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    open_s: PositiveSeconds = 10.0
    half_open_probes: int = Field(default=1, ge=1, le=100)
    success_threshold: int = Field(default=1, ge=1, le=100)
    max_ejection_percent: int = Field(default=50, ge=0, le=100)
    """Most of a model's backends open breakers may hold out at once (at least one; never the last healthy)."""
    panic_threshold_percent: int = Field(default=50, ge=0, le=100)
    """Below this share of available backends, a model's open breakers are ignored (Envoy's panic mode)."""


class AffinityConfig(_Strict):
    """Prefix/session affinity: a ``user`` or prompt prefix seen recently prefers the backend it was last sent to."""

    enabled: bool = True
    prefix_chars: int = Field(default=256, ge=1, le=100_000)
    slack: int = Field(default=2, ge=0, le=10_000)
    """Requests' worth of queueing delay the preferred (warm) backend may add over the best prediction
    (capped at a quarter of it); see runtime/ROUTING.md."""
    ttl_s: float = Field(default=300.0, gt=0, le=86_400)
    """How long a session or prefix counts as warm on the backend it was last sent to (vLLM evicts
    cached prefixes when it needs the memory, so a busy engine forgets sooner)."""
    remember: int = Field(default=8192, ge=1, le=1_000_000)
    """Sessions and prefixes remembered at most (the least recently sent are forgotten first)."""
    cache_tokens: int = Field(default=32_768, ge=0, le=100_000_000)
    """Prompt tokens of prefixes each backend is assumed to keep cached (vLLM's prefix caching; its
    log states the KV cache size at start). The prompt blocks of ``prefix_chars`` characters sent to
    a backend count as cached there while among the last this many tokens' worth, within ``ttl_s``;
    a warm backend is predicted to compute only the rest. 0: no prompt is credited a cached prefix."""


class LateBindingConfig(_Strict):
    """Hold requests in the router while every engine is full, and release them jointly
    (runtime/ROUTING.md § Late binding). Only with the ``load`` strategy; held requests wait in
    the ``queue`` (its size and deadline apply)."""

    enabled: bool = True
    engine_queue: int = Field(default=1, ge=0, le=1000)
    """Requests each engine keeps queued beyond its sequence limit, so no engine step is missed."""


class RouterConfig(_Strict):
    """Top-level router config (``swarm-router --config FILE``)."""

    listen: ListenConfig = Field(default_factory=ListenConfig)
    api_key_env: EnvName | None = "ROUTER_API_KEY"
    admin_key_env: EnvName = "ROUTER_ADMIN_KEY"
    api_key_file: str | None = None
    """File holding the client API key (e.g. a Docker upload under /run/secrets); wins over the env var."""
    admin_key_file: str | None = None
    """File holding the admin key; wins over ``admin_key_env``."""
    strategy: Literal["load", "round_robin"] = "load"
    backends: list[BackendConfig] = Field(min_length=1)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3)
    retries: int = Field(default=1, ge=0, le=3)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    affinity: AffinityConfig = Field(default_factory=AffinityConfig)
    late_binding: LateBindingConfig = Field(default_factory=LateBindingConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique_names(self) -> RouterConfig:
        seen: set[str] = set()
        for backend in self.backends:
            if backend.name in seen:
                raise ValueError(f"backends: duplicate backend name {backend.name!r}; names must be unique")
            seen.add(backend.name)
        return self


class ConfigError(Exception):
    """The config file cannot be read or is invalid; the message names the key path."""


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``key.path: message``."""
    return "\n".join(validation_lines(exc))


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate a YAML router config."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping with at least `backends`")
    try:
        return RouterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid router config\n{format_validation_error(exc)}") from exc
