"""Helpers for the monitoring tests: plans from edited prod config, rendered files, real tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm.plan import SwarmPlan
from swarm.plan.builder import build_plan
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, StackConfig, build_spec
from tests.tools import require_tool  # noqa: F401  (re-exported for the tests of this folder)


def plan_of(values: dict[str, Any], edit: Callable[[dict[str, Any]], None] | None = None) -> SwarmPlan:
    """The plan of (edited) prod values; secret keys stay marked secure as in a real stack."""
    if edit is not None:
        edit(values)
    secure = frozenset(key for key, value in values.items() if value == OFFLINE_SECRET_PLACEHOLDER)
    return build_plan(build_spec(StackConfig(values, secure, "test")))




def render(plan: SwarmPlan, out: Path, prefix: str = "") -> Path:
    """Write the plan's rendered files under `out` (as `swarm render` does); secret paths in them
    point at /run/secrets, so placeholder secrets are written to `out/secrets` and the files that
    name them are rewritten to point there."""
    secrets = out / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    for service in plan.services:
        for secret in service.secret_files:
            (secrets / secret.name).write_text("placeholder-secret\n")
    for path, content in plan.files().items():
        if prefix and not path.startswith(prefix):
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content.replace("/run/secrets/", f"{secrets}/"))
    return out
