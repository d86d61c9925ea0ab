"""Helpers for stack-config tests (the shared fixtures live in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from swarm.stack_config import StackConfig
from tests.conftest import REPO

__all__ = ["REPO", "config_of"]


def config_of(values: dict[str, Any], secure: frozenset[str] = frozenset()) -> StackConfig:
    return StackConfig(values, secure, "test")
