"""Helpers for stack-config tests (the shared fixtures live in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, StackConfig
from tests.conftest import REPO

__all__ = ["REPO", "config_of"]


def config_of(values: dict[str, Any], secure: frozenset[str] | None = None) -> StackConfig:
    """A stack config from plain values; keys holding the offline placeholder count as secure
    (as they do when `read_stack_file` or the `prod_config` fixture made them)."""
    if secure is None:
        secure = frozenset(key for key, value in values.items() if value == OFFLINE_SECRET_PLACEHOLDER)
    return StackConfig(values, secure, "test")
