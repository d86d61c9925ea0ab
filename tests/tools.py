"""Real tools the tests run (promtool, amtool, cloud-init, ...): present, or a clear skip/failure."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """The tool's path; outside CI a missing tool skips with the reason, in CI it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/ci-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
