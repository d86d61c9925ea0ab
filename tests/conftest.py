"""Fixtures every test folder shares: the prod stack's configuration, plan and offline run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from swarm.offline.engine import CapturedRun, run_program
from swarm.plan import SwarmPlan
from swarm.plan.builder import build_plan
from swarm.stack_config import (
    OFFLINE_SECRET_PLACEHOLDER,
    StackConfig,
    build_spec,
    read_stack_file,
    required_secrets,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prod_config() -> StackConfig:
    """Pulumi.prod.yaml as a deployed stack sees it: the operator's secrets (provider API keys,
    `pulumi config set --secret`) are set, here to the offline plan's marked placeholder."""
    config = read_stack_file(REPO / "Pulumi.prod.yaml")
    keys = {f"ai-swarm:{name}" for name in required_secrets(build_spec(config))}
    values = {**{key: OFFLINE_SECRET_PLACEHOLDER for key in keys}, **config.values}
    return StackConfig(values, config.secure_keys | keys, config.source)


@pytest.fixture
def prod_values(prod_config: StackConfig) -> dict[str, Any]:
    """A deep copy of prod's config values, free to mutate."""
    return copy.deepcopy(dict(prod_config.values))


@pytest.fixture(scope="session")
def prod_plan(prod_config: StackConfig) -> SwarmPlan:
    return build_plan(build_spec(prod_config))


@pytest.fixture(scope="session")
def prod_run(prod_config: StackConfig) -> CapturedRun:
    """The real program under the mock engine on prod (run once per session)."""
    return run_program(prod_config.values, prod_config.secure_keys, "prod")
