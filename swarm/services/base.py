"""What every service module gets and gives: a `PlanContext` in, `ServicePlan`s out.

A service module is pure: from the validated spec it decides where its containers go, what
they run, which files and secrets they receive and whom they talk to. Helpers here keep
the cross-cutting conventions (published ports on the Tailscale address, endpoints) in one
place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from swarm.errors import key_path
from swarm.model import Service, SwarmSpec
from swarm.plan.types import Healthcheck, PortMapping, ServicePlan


@dataclass(frozen=True)
class PlanContext:
    spec: SwarmSpec

    def services_of(self, kind: str) -> Iterator[tuple[str, Service]]:
        """Configured services of `kind`, in config order."""
        for name, service in self.spec.services.items():
            if self.spec.service_kind(name) == kind:
                yield name, service

    def first_of(self, kind: str) -> tuple[str, Service] | None:
        return next(self.services_of(kind), None)

    def tailscale_ip(self, node: str) -> str:
        return self.spec.nodes[node].tailscale_ip

    def publish(self, node: str, container_port: int, host_port: int | None) -> tuple[PortMapping, ...]:
        """The port on the node's Tailscale address, or nothing (private network only)."""
        if host_port is None:
            return ()
        return (PortMapping(container=container_port, host=host_port, host_ip=self.tailscale_ip(node)),)

    def url(self, node: str, host_port: int) -> str:
        return f"http://{self.tailscale_ip(node)}:{host_port}"


class ServiceModule(Protocol):
    """The face of a `swarm/services/<kind>.py` module (registered in `swarm.services.REGISTRY`)."""

    KIND: str

    def build(self, ctx: PlanContext) -> Iterable[ServicePlan]: ...


@runtime_checkable
class LateServiceModule(Protocol):
    """A module that also plans after every other one (swarm.plan.builder's second phase): it
    receives the first-phase containers, e.g. to scrape them. `build` still runs in phase one."""

    def build_after(self, ctx: PlanContext, services: tuple[ServicePlan, ...]) -> Iterable[ServicePlan]: ...


def service_origin(name: str) -> str:
    return key_path("services", name)


def http_healthcheck(port: int, path: str = "/health", start_period_s: int = 20) -> Healthcheck:
    """A healthcheck that needs only the image's Python (no curl in slim images)."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"
    return Healthcheck(test=("python", "-c", probe), start_period_s=start_period_s)
