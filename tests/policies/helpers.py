"""Run one policy of the pack by name (the same objects ``policies.POLICIES`` serves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies import POLICIES
from policies.local_runner import ResourceSnapshot, Verdict, run_policies

BY_NAME = {policy.name: policy for policy in POLICIES}


def run(name: str, resources: list[ResourceSnapshot], config: Mapping[str, Any] | None = None) -> list[Verdict]:
    """Verdicts of policy ``name`` only; ``config`` is that policy's config."""
    return run_policies(resources, {name: config or {}}, policies=[BY_NAME[name]])


def level_of(name: str) -> str:
    level = BY_NAME[name].enforcement_level
    assert level is not None
    return level.value
