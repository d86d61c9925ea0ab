"""Helpers for the monitoring tests: plans from edited prod config, rendered files, real tools."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarm.monitoring.targets import TOKEN_DIR
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
    point at /run/secrets (or, for a scrape token Prometheus's entrypoint derives from a secret,
    at its tmpfs), so placeholder secrets are written to `out/secrets` and the files that name
    them are rewritten to point there."""
    secrets = out / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    names = {secret.name for service in plan.services for secret in service.secret_files}
    for name in names:
        (secrets / name).write_text("placeholder-secret\n")
    for path, content in plan.files().items():
        if prefix and not path.startswith(prefix):
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        for name in names:
            content = content.replace(f"{TOKEN_DIR}/{name}", f"{secrets}/{name}")
        target.write_text(content.replace("/run/secrets/", f"{secrets}/"))
    return out


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """`check()`'s first truthy answer, polled every 0.25 s; fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError, IndexError, StopIteration):
            last = check()
            if last:
                return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})")


@contextlib.contextmanager
def stopped_after() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to append started processes to; each is terminated (then killed) at the end."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
