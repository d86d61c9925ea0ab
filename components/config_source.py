"""Read the stack's configuration through `pulumi.Config` into the shape `swarm` validates.

Structured keys arrive with `get_object`; secret keys are never read as plain values here:
validation only needs to know they are set and secure, and the program asks for them with
`require_secret` (`config_secrets`), so they stay secret Outputs end to end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

from swarm.errors import NAMESPACE
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, STRUCTURED_KEYS, StackConfig


def stack_config_from_pulumi() -> StackConfig:
    """Every `ai-swarm:` key of this stack: structured values parsed, secure ones withheld."""
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    secure: set[str] = set()
    for key in _declared_keys():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        if runtime_config.is_config_secret(key):
            secure.add(key)
            values[key] = OFFLINE_SECRET_PLACEHOLDER  # presence only; the value comes via require_secret
        elif name in STRUCTURED_KEYS:
            values[key] = config.get_object(name)
        else:
            values[key] = config.get(name)
    return StackConfig(values, frozenset(secure), "pulumi config")


def config_secrets(keys: Iterable[str]) -> dict[str, pulumi.Output[str]]:
    """The operator-set secrets the plan needs, as secret Outputs (fails on a missing one)."""
    config = pulumi.Config(NAMESPACE)
    return {key: config.require_secret(key) for key in keys}


def _declared_keys() -> list[str]:
    # Key names only (the SDK has no public listing); values are read through pulumi.Config.
    return sorted({*runtime_config.get_config_env(), *runtime_config.CONFIG.get()})
