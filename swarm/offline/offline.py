"""`python -m swarm plan`: validate, run the program under mocks, plan capacity, run policies.

Order matters: the configuration is validated first, so an invalid or infeasible stack
exits 2 before the program registers a single resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm.capacity import GpuCapacity
from swarm.errors import Issue, SpecError
from swarm.model import SwarmSpec
from swarm.offline.engine import CapturedResource, run_program
from swarm.plan import SwarmPlan
from swarm.plan.builder import build_plan
from swarm.policy_config import policy_config
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, StackConfig, build_spec, required_secrets

EXIT_CLEAN, EXIT_VIOLATION, EXIT_INVALID = 0, 1, 2


@dataclass
class PlanResult:
    stack: str
    spec: SwarmSpec | None = None
    plan: SwarmPlan | None = None
    resources: list[CapturedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    capacity: list[GpuCapacity] = field(default_factory=list)
    verdicts: list[Any] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[Any]:
        return [verdict for verdict in self.verdicts if verdict.level != "allowed"]

    @property
    def exceptions(self) -> list[Any]:
        return [verdict for verdict in self.verdicts if verdict.level == "allowed"]

    @property
    def exit_code(self) -> int:
        if self.issues:
            return EXIT_INVALID
        if any(verdict.level == "mandatory" for verdict in self.verdicts):
            return EXIT_VIOLATION
        return EXIT_CLEAN


def offline_plan(config: StackConfig, stack: str) -> PlanResult:
    result = PlanResult(stack=stack)
    try:
        spec = build_spec(config)
        plan = build_plan(spec)
    except SpecError as exc:
        result.issues = list(exc.issues)
        return result
    result.spec, result.plan = spec, plan
    values, secure = _with_secret_placeholders(config, spec, result.notes)
    run = run_program(values, secure, stack)
    result.resources, result.outputs = run.resources, run.outputs
    result.capacity = list(plan.capacity)
    result.verdicts = check_policies(plan, run.resources)
    return result


def check_policies(plan: SwarmPlan, resources: list[CapturedResource]) -> list[Any]:
    """Run the policy pack's own policy objects over the captured registrations."""
    from policies.local_runner import run_policies

    return run_policies([snapshot_of(r) for r in resources], policy_config(plan))


def snapshot_of(resource: CapturedResource) -> Any:
    """The policy runner's view of one captured registration."""
    from policies.local_runner import ResourceSnapshot

    return ResourceSnapshot(
        urn=resource.urn, type=resource.type, name=resource.name, props=dict(resource.inputs),
        parent=resource.parent, protect=resource.protect, dependencies=list(resource.dependencies),
        property_dependencies={key: list(urns) for key, urns in resource.property_dependencies.items()},
        provider_urn=resource.provider,
    )


def _with_secret_placeholders(config: StackConfig, spec: SwarmSpec,
                              notes: list[str]) -> tuple[dict[str, Any], frozenset[str]]:
    """Secrets cannot be decrypted offline; missing required ones get a marked placeholder."""
    values = dict(config.values)
    secure = set(config.secure_keys)
    for name in required_secrets(spec):
        key = f"ai-swarm:{name}"
        if key not in values:
            values[key] = OFFLINE_SECRET_PLACEHOLDER
            secure.add(key)
            notes.append(f"{key} is not set: offline placeholder used; `pulumi up` needs "
                         f"`pulumi config set --secret {name}`")
    return values, frozenset(secure)
