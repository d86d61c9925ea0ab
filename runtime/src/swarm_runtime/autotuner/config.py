"""The autotuner's YAML configuration: pydantic v2 models, unknown keys rejected.

Secrets are never in the file: only the *name* of the environment variable holding the
router's admin key. ``load_config`` reads and validates without starting anything, so the
Pulumi program can validate the YAML it renders with the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from swarm_runtime.config_errors import validation_lines
from swarm_runtime.secrets import read_secret

__all__ = [
    "AutotunerConfig",
    "ConfigError",
    "ControlConfig",
    "ListenConfig",
    "RouterTarget",
    "TargetConfig",
    "ThermalConfig",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouterTarget(_Strict):
    """Where limits are pushed: swarm-router's admin API."""

    url: str = Field(default="http://127.0.0.1:9000", pattern=r"^https?://")
    admin_key_env: str = Field(default="ROUTER_ADMIN_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    admin_key_file: str | None = Field(default=None, description="file holding the key; wins over the env var")
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    backoff_initial_s: float = Field(default=1.0, gt=0, le=60)
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)


class ListenConfig(_Strict):
    """Address of the autotuner's own ``/metrics`` and ``/health`` endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=9400, ge=0, le=65535)


class ThermalConfig(_Strict):
    """Thermal guard: cut when the GPU comes within ``margin_c`` of its ceiling.

    The ceiling is the lower of the GPU's own slowdown threshold (from NVML) and
    ``max_temp_c`` (an operator limit, e.g. 85 °C for thanos). ``hold_band_c`` above the
    guard line stops growth before the guard has to cut.
    """

    margin_c: float = Field(default=5.0, ge=0, le=30)
    max_temp_c: float = Field(default=85.0, gt=30, le=110)
    hold_band_c: float = Field(default=3.0, ge=0, le=20)
    time_constant_s: float = Field(
        default=30.0, ge=0, le=3600,
        description="GPU heating time constant; the guard looks this far ahead (0: level only)")
    trend_window: int = Field(default=4, ge=2, le=60, description="samples in the temperature-trend fit")


class ControlConfig(_Strict):
    """Tuning of the control law shared by all targets (defaults are conservative)."""

    ttft_quantile: float = Field(default=0.9, gt=0, lt=1)
    grow_below: float = Field(default=0.8, gt=0, le=1, description="grow while TTFT < target * this")
    increase: int = Field(default=1, ge=1, le=64)
    decrease_ratio: float = Field(default=0.75, gt=0, lt=1)
    min_cut_ratio: float = Field(default=0.5, gt=0, lt=1,
                                 description="deepest single TTFT cut when vLLM is not queueing")
    max_growth_ratio: float = Field(default=1.5, ge=1, le=4, description="largest growth per tick")
    cooldown_s: float = Field(default=15.0, ge=0, le=3600,
                              description="no growth this soon after a cut (cuts have their own rule)")
    kv_usage_max: float = Field(default=0.95, gt=0, le=1, description="KV-cache usage that stops growth")
    kv_hysteresis: float = Field(default=0.1, ge=0, lt=1,
                                 description="growth resumes once KV usage < kv_usage_max - this")
    power_saturation: float = Field(default=0.98, gt=0, le=1.5)
    busy_fraction: float = Field(
        default=0.8, gt=0, le=1, description="grow only if running+waiting >= limit * this"
    )
    smoothing_window: int = Field(default=3, ge=1, le=60, description="samples in the median filter")
    gauge_check_s: float = Field(
        default=1.0, ge=0, le=3600,
        description="between ticks, read vLLM's gauges and the GPU this often: cut at once when vLLM "
                    "queues on a full KV cache, take a slow start's first step on lighter prompts "
                    "(0: only at ticks)")
    recommend_window_s: float = Field(default=3600.0, gt=0)
    recommend_round_to: int = Field(default=8, ge=1, le=256)
    recommend_percentile: float = Field(default=0.95, gt=0, le=1,
                                        description="quantile of held limits behind the recommendation")


class TargetConfig(_Strict):
    """One tuned backend: a router backend name, its local vLLM and its GPU."""

    backend: str = Field(min_length=1)
    vllm_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    gpu_index: int | None = Field(default=0, ge=0, description="null: no GPU signals for this target")
    ttft_target_s: float = Field(default=0.5, gt=0, le=600)
    min_limit: int = Field(default=2, ge=1)
    max_limit: int = Field(default=64, ge=1, le=4096)
    initial_limit: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> TargetConfig:
        if self.min_limit > self.max_limit:
            raise ValueError(f"min_limit ({self.min_limit}) must be <= max_limit ({self.max_limit})")
        if not self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError(
                f"initial_limit ({self.initial_limit}) must be within "
                f"[min_limit, max_limit] = [{self.min_limit}, {self.max_limit}]"
            )
        return self


class AutotunerConfig(_Strict):
    """Top level of ``swarm-autotuner --config FILE``."""

    router: RouterTarget = RouterTarget()
    listen: ListenConfig = ListenConfig()
    interval_s: float = Field(default=5.0, gt=0, le=3600)
    dry_run: bool = False
    targets: list[TargetConfig] = Field(min_length=1)
    thermal: ThermalConfig = ThermalConfig()
    control: ControlConfig = ControlConfig()
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @model_validator(mode="after")
    def _unique_backends(self) -> AutotunerConfig:
        names = [t.backend for t in self.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"targets: backend names must be unique, repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _gauge_checks_fit_between_ticks(self) -> AutotunerConfig:
        # Only an explicit value is refused: the default simply never fires between ticks this frequent.
        check = self.control.gauge_check_s
        if "gauge_check_s" in self.control.model_fields_set and check > 0 and check >= self.interval_s:
            raise ValueError(f"control.gauge_check_s ({check:g}) must be 0 (off) or shorter than "
                             f"interval_s ({self.interval_s:g})")
        return self

    def admin_key(self, environ: dict[str, str] | None = None) -> str | None:
        """The router admin key: from `router.admin_key_file` if set, else the env var it names."""
        return read_secret(self.router.admin_key_file, self.router.admin_key_env, "router.admin_key_file", environ)


class ConfigError(ValueError):
    """Invalid configuration; the message names each offending key path."""


def _format(exc: ValidationError) -> str:
    return "invalid autotuner config:\n  " + "\n  ".join(validation_lines(exc, root="<root>"))


def parse_config(data: Any) -> AutotunerConfig:
    """Validate already-loaded YAML/JSON data; raise :class:`ConfigError` naming key paths."""
    if not isinstance(data, dict):
        raise ConfigError("invalid autotuner config: <root>: expected a mapping")
    try:
        return AutotunerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc)) from exc


def load_config(path: str | Path) -> AutotunerConfig:
    """Read and validate a YAML config file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid autotuner config: {path}: not valid YAML: {exc}") from exc
    return parse_config(data)
