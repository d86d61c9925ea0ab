"""The real Docker engine, started once for the folder (see dockerd.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.dockerd import Engine, running_engine


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with running_engine() as started:
        yield started
