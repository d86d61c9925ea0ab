"""Shared fixtures: the prod stack's configuration as mutable data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swarm.stack_config import StackConfig, read_stack_file

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prod_config() -> StackConfig:
    return read_stack_file(REPO / "Pulumi.prod.yaml")


@pytest.fixture
def prod_values(prod_config: StackConfig) -> dict[str, Any]:
    """A deep copy of prod's config values, free to mutate."""
    return copy.deepcopy(dict(prod_config.values))


def config_of(values: dict[str, Any], secure: frozenset[str] = frozenset()) -> StackConfig:
    return StackConfig(values, secure, "test")
