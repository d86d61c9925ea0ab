"""From `SwarmSpec` to `SwarmPlan`: ask every registered service module, then check the whole.

Checks that need the placed containers live here: unique service names, an image built for
the node's architecture, every flow's target placed, each node's RAM budget and no CPU limit
above the node's cores (the engine refuses to create such a container). Any
problem raises `SpecError` (exit 2) before a resource is registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from swarm.capacity import plan_capacity
from swarm.errors import Issue, key_path, raise_if
from swarm.kinds import EXTERNAL_PREFIX
from swarm.model import SwarmSpec
from swarm.oracle.files import oracle_files
from swarm.plan.types import Endpoint, NodeMemory, ServicePlan, SwarmPlan
from swarm.policy_config import render_policy_config
from swarm.services import REGISTRY, PlanContext
from swarm.services.base import LateServiceModule

GIB_MB = 1024


def build_plan(spec: SwarmSpec) -> SwarmPlan:
    ctx = PlanContext(spec)
    services = tuple(plan for module in REGISTRY.values() for plan in module.build(ctx))
    # Second phase: modules that read the others' plans (Prometheus's scrape targets) expose
    # `build_after(ctx, services)`; they see every first-phase container, never each other's.
    services += tuple(plan for module in REGISTRY.values() if isinstance(module, LateServiceModule)
                      for plan in module.build_after(ctx, services))
    memory = tuple(node_memory(spec, services))
    raise_if([*_name_issues(services), *_arch_issues(spec, services), *_flow_issues(spec, services),
              *_memory_issues(memory, services), *_cpu_issues(spec, services)])
    plan = SwarmPlan(
        spec=spec,
        services=services,
        flows=tuple(flow for service in services for flow in service.flows),
        endpoints={service.name: _endpoint(spec, service) for service in services},
        capacity=tuple(plan_capacity(spec)),
        memory=memory,
    )
    return replace(plan, extra_files={"policy/policy-config.json": render_policy_config(plan),
                                      **oracle_files(plan)})


def _endpoint(spec: SwarmSpec, service: ServicePlan) -> Endpoint:
    published = service.ports[0] if service.ports else None
    return Endpoint(
        service=service.name, kind=service.kind, node=service.node,
        url=f"http://{published.host_ip}:{published.host}" if published else None,
        internal_url=f"http://{service.name}:{service.internal_port}" if service.internal_port else None,
    )


def node_memory(spec: SwarmSpec, services: tuple[ServicePlan, ...]) -> Iterator[NodeMemory]:
    reserve_mb = round(spec.capacity.os_reserve_gb * GIB_MB)
    for name, node in spec.nodes.items():
        yield NodeMemory(node=name, ram_mb=round(node.ram_gb * GIB_MB), reserve_mb=reserve_mb,
                         shares={s.name: s.memory_mb for s in services if s.node == name})


def _name_issues(services: tuple[ServicePlan, ...]) -> Iterator[Issue]:
    seen: dict[str, ServicePlan] = {}
    for service in services:
        other = seen.setdefault(service.name, service)
        if other is not service:
            yield Issue(service.origin, f"service name {service.name!r} is already used by {other.origin}")


def _arch_issues(spec: SwarmSpec, services: tuple[ServicePlan, ...]) -> Iterator[Issue]:
    for service in services:
        arch = spec.nodes[service.node].arch
        if arch not in service.image.platforms:
            yield Issue(service.origin,
                        f"service {service.name!r} on node {service.node!r} ({arch}): image {service.image.ref} "
                        f"is built for {sorted(service.image.platforms)} only; place it on a "
                        f"{'/'.join(sorted(service.image.platforms))} node or pick another image")


def _flow_issues(spec: SwarmSpec, services: tuple[ServicePlan, ...]) -> Iterator[Issue]:
    names = {service.name for service in services} | set(spec.inference)
    for service in services:
        for flow in service.flows:
            if flow.target not in names and not flow.target.startswith(EXTERNAL_PREFIX):
                yield Issue(service.origin, f"{service.name!r} needs {flow.target!r} ({flow.purpose}), "
                                            "which the stack does not place")


def _memory_issues(memory: tuple[NodeMemory, ...], services: tuple[ServicePlan, ...]) -> Iterator[Issue]:
    for budget in memory:
        if budget.fits:
            continue
        shares = ", ".join(f"{name} {mb} MB" for name, mb in sorted(budget.shares.items(), key=lambda kv: -kv[1]))
        yield Issue(key_path("nodes", budget.node, "ram_gb"),
                    f"node {budget.node!r} has {budget.ram_mb} MB of RAM but its containers' limits plus the OS "
                    f"reserve need {budget.used_mb} MB (OS reserve {budget.reserve_mb} MB, "
                    f"ai-swarm:capacity.os_reserve_gb; {shares}); lower a limit or move a service")


def _cpu_issues(spec: SwarmSpec, services: tuple[ServicePlan, ...]) -> Iterator[Issue]:
    """Docker refuses a container whose `cpus` exceeds the host's CPUs ("Range of CPUs is from 0.01
    to 2.00, as there are only 2 CPUs available", tests/engine): fail the plan, not `pulumi up`."""
    for service in services:
        cores = spec.nodes[service.node].cpus
        if service.cpus > cores:
            yield Issue(key_path("nodes", service.node, "cpus"),
                        f"service {service.name!r} ({service.origin}) is limited to {service.cpus:g} CPUs but node "
                        f"{service.node!r} has {cores}; Docker refuses a limit above the node's CPUs")
