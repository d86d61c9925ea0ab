"""Run the pack's real policy objects over captured resources, without the Pulumi engine.

The offline plan (``python -m swarm plan``) captures every resource the program registers
under Pulumi's mocks and hands them here as :class:`ResourceSnapshot`. This module builds
the same ``ResourceValidationArgs`` / ``StackValidationArgs`` the engine builds (props
deserialized and wrapped in the unknown-checking proxy, config = schema defaults + given
config, enforcement level overridable per policy) and calls each policy's ``validate``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.output import Unknown as _OutputUnknown
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from ._props import config_with_defaults

LEVELS = ("mandatory", "advisory", "allowed")


@dataclass(frozen=True)
class ResourceSnapshot:
    """One resource as the offline plan captured it; ``props`` are camelCase inputs."""

    urn: str
    type: str
    name: str
    props: dict[str, Any]
    parent: str | None = None
    protect: bool = False
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider_urn: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A violation (``mandatory``/``advisory``) or a waived one (``allowed``)."""

    policy: str
    urn: str | None
    level: str
    message: str

    def sort_key(self) -> tuple[int, str, str, str]:
        return LEVELS.index(self.level), self.policy, self.urn or "", self.message


class PolicyCrashed(RuntimeError):
    """A policy raised while validating; the engine would fail the preview too."""


class _Reporter:
    """The ``report_violation`` callback, plus ``allowed`` for waivers (see _props._waive)."""

    def __init__(self, policy: Policy, level: str, default_urn: str | None, out: list[Verdict]) -> None:
        self.policy, self.level, self.default_urn, self.out = policy, level, default_urn, out

    def __call__(self, message: str, urn: str | None = None) -> None:
        text = f"{self.policy.description}\n{message}" if message else self.policy.description
        self.out.append(Verdict(self.policy.name, urn or self.default_urn, self.level, text))

    def allowed(self, message: str, urn: str | None = None) -> None:
        self.out.append(Verdict(self.policy.name, urn or self.default_urn, "allowed", message))


def enforcement_level(policy: Policy, policy_config: Mapping[str, Any] | None) -> EnforcementLevel:
    """The per-policy ``enforcementLevel`` from config wins over the policy's own level."""
    override = (policy_config or {}).get("enforcementLevel")
    if override is not None:
        return override if isinstance(override, EnforcementLevel) else EnforcementLevel(str(override))
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def normalize_config(config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Pulumi's pack-config shapes: ``{"name": "advisory"}``, ``{"name": {...}}``, ``{"all": level}``."""
    normalized: dict[str, dict[str, Any]] = {}
    for name, value in (config or {}).items():
        if isinstance(value, str | EnforcementLevel):
            normalized[name] = {"enforcementLevel": value}
        else:
            normalized[name] = dict(value)
    return normalized


def _policy_config(config: Mapping[str, dict[str, Any]], name: str) -> dict[str, Any]:
    everyone = {k: v for k, v in config.get("all", {}).items() if k == "enforcementLevel"}
    return {**everyone, **config.get(name, {})}


def _wire(value: Any) -> Any:
    """Mock inputs hold ``pulumi.output.Unknown`` objects; the engine sends sentinel strings."""
    if isinstance(value, _OutputUnknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def engine_props(props: Mapping[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(_wire(props)))


def _options(snapshot: ResourceSnapshot) -> PolicyResourceOptions:
    return PolicyResourceOptions(snapshot.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [],
                                 snapshot.parent)


def _provider(snapshot: ResourceSnapshot,
              by_urn: Mapping[str, ResourceSnapshot]) -> PolicyProviderResource | None:
    ref = snapshot.provider_urn
    if not ref:
        return None
    urn = ref if ref in by_urn else ref.rsplit("::", 1)[0]  # provider refs are "<urn>::<id>"
    found = by_urn.get(urn)
    if found is not None:
        return PolicyProviderResource(found.type, engine_props(found.props), found.urn, found.name)
    parts = urn.split("::")
    return PolicyProviderResource(parts[-2].split("$")[-1] if len(parts) > 2 else "", {}, urn, parts[-1])


def _settle(result: Any) -> None:
    """Await an async validation on a private loop, as the engine does.

    Not ``asyncio.run``: that unsets the thread's current loop, which Pulumi's mocks use.
    """
    if inspect.isawaitable(result):
        async def wait() -> None:
            await result

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(wait())
        finally:
            loop.close()


def _run_one(policy: Policy, level: str, call: Any, urn: str | None, out: list[Verdict]) -> None:
    try:
        _settle(call(_Reporter(policy, level, urn, out)))
    except _NotApplicableError:
        return
    except UnknownValueError as exc:
        out.append(Verdict(policy.name, urn, "advisory",
                           f"can't run policy '{policy.name}' during preview: {exc.message}"))
    except Exception as exc:
        raise PolicyCrashed(f"policy {policy.name!r} crashed on {urn or 'the stack'}: {exc!r}") from exc


def _stack_resources(resources: list[ResourceSnapshot]) -> list[PolicyResource]:
    by_urn = {r.urn: r for r in resources}
    built = {r.urn: PolicyResource(r.type, engine_props(r.props), r.urn, r.name, _options(r),
                                   _provider(r, by_urn), None, [], {}) for r in resources}
    for r in resources:
        target = built[r.urn]
        target.parent = built.get(r.parent) if r.parent else None
        target.dependencies = [built[d] for d in r.dependencies if d in built]
        target.property_dependencies = {k: [built[d] for d in v if d in built]
                                        for k, v in r.property_dependencies.items()}
    return list(built.values())


def run_policies(
    resources: Iterable[ResourceSnapshot],
    config: Mapping[str, Any] | None = None,
    policies: Iterable[Policy] | None = None,
) -> list[Verdict]:
    """Every verdict of ``policies`` (default: the pack) over ``resources``, sorted.

    ``config`` is shaped like ``pulumi preview --policy-pack-config FILE``: policy name ->
    level string, or -> ``{"enforcementLevel": ..., <config_schema keys>...}``; ``all`` sets
    every policy's level.
    """
    if policies is None:
        from . import POLICIES

        policies = POLICIES
    resources = list(resources)
    by_urn = {r.urn: r for r in resources}
    normalized = normalize_config(config)
    out: list[Verdict] = []
    for policy in policies:
        given = _policy_config(normalized, policy.name)
        level = enforcement_level(policy, given)
        if level == EnforcementLevel.DISABLED:
            continue
        shown = "mandatory" if level == EnforcementLevel.REMEDIATE else level.value
        cfg = config_with_defaults(policy, given)
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.type, engine_props(r.props), r.urn, r.name, _options(r),
                                              _provider(r, by_urn), cfg)
                _run_one(policy, shown, lambda rep, a=args, p=policy: p.validate(a, rep), r.urn, out)
        elif isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs(_stack_resources(resources), cfg)
            _run_one(policy, shown, lambda rep, a=stack_args, p=policy: p.validate(a, rep), None, out)
    return sorted(out, key=Verdict.sort_key)


def has_mandatory(verdicts: Iterable[Verdict]) -> bool:
    return any(v.level == "mandatory" for v in verdicts)
