"""Read the stack's configuration from the Pulumi runtime into the shape `swarm` validates."""

from __future__ import annotations

import json
from typing import Any

import pulumi.runtime.config as runtime_config

from swarm.stack_config import StackConfig


def stack_config_from_runtime() -> StackConfig:
    """All config of this stack as `StackConfig`; structured values arrive as JSON text."""
    values: dict[str, Any] = {}
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    for key, raw in merged.items():
        values[key] = _decode(raw)
    secure = frozenset(key for key in values if runtime_config.is_config_secret(key))
    return StackConfig(values, secure, "pulumi config")


def _decode(raw: Any) -> Any:
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw
