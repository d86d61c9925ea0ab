"""Fixtures of the monitoring tests that start real servers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.monitoring.support import stopped_after


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Servers a test starts (append them here), stopped when it ends, failed or not."""
    with stopped_after() as started:
        yield started
