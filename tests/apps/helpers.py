"""Shared helpers for the app tests: stack values, plans, and the program under mocks with the
registration options (import ID, protect, retain-on-delete) the offline capture leaves out."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.adopt import read_inspect
from swarm.model import Adoption
from swarm.offline import engine
from swarm.offline.engine import CapturedResource
from swarm.plan import SwarmPlan
from swarm.plan.builder import build_plan
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, StackConfig, build_spec

FIXTURES = Path(__file__).parent / "fixtures"
SERVICES = "ai-swarm:services"
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
QDRANT_UNPRIVILEGED = "qdrant/qdrant:v1.15.4-unprivileged@sha256:" + "1" * 64
"""The operator's pin of Qdrant's unprivileged image, which the container the program runs needs
(swarm/services/qdrant.py); the digest is a stand-in (no registry here)."""


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def sample_adoption() -> Adoption:
    return read_inspect(fixture_text("inspect-qdrant-starlord.json"))


def stack(prod_values: Mapping[str, Any], **services: dict[str, Any] | None) -> dict[str, Any]:
    """Prod's values (secret keys as offline placeholders) with `services` set (a None value removes
    the service)."""
    values = copy.deepcopy(dict(prod_values))
    configured = dict(values[SERVICES])
    for name, service in services.items():
        if service is None:
            configured.pop(name.replace("_", "-"), None)
        else:
            configured[name.replace("_", "-")] = service
    values[SERVICES] = configured
    return values


def secure_keys(values: Mapping[str, Any]) -> frozenset[str]:
    """Keys the stack file marks `secure` (read offline as placeholders, as `read_stack_file` does)."""
    return frozenset(key for key, value in values.items() if value == OFFLINE_SECRET_PLACEHOLDER)


def config_of(values: Mapping[str, Any]) -> StackConfig:
    return StackConfig(values, secure_keys(values), "test")


def plan_of(values: Mapping[str, Any]) -> SwarmPlan:
    return build_plan(build_spec(config_of(values)))


@dataclass(frozen=True)
class Registration:
    resource: CapturedResource
    import_id: str
    protect: bool
    retain_on_delete: bool
    ignore_changes: tuple[str, ...]


_OPTIONS: dict[str, tuple[str, bool, bool, tuple[str, ...]]] = {}


class _RecordingMonitor(engine._CapturingMonitor):
    def RegisterResource(self, request: Any) -> Any:  # gRPC method name
        response = super().RegisterResource(request)
        _OPTIONS[response.urn] = (request.importId, bool(request.protect), bool(request.retainOnDelete),
                                  tuple(request.ignoreChanges))
        return response


@contextmanager
def _recording() -> Iterator[None]:
    original = engine._CapturingMonitor
    engine._CapturingMonitor = _RecordingMonitor  # type: ignore[misc]
    try:
        yield
    finally:
        engine._CapturingMonitor = original  # type: ignore[misc]


def run(values: Mapping[str, Any]) -> dict[str, Registration]:
    """The real program under Pulumi's mock engine: registrations by logical name."""
    _OPTIONS.clear()
    with _recording():
        captured = engine.run_program(values, secure_keys(values), "prod")
    found = {}
    for resource in captured.resources:
        found[resource.name] = Registration(resource, *_OPTIONS[resource.urn])
    return found
