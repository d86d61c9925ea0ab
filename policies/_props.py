"""Helpers shared by every rule: read camelCase props safely and build policies.

The engine hands policies a proxy that raises ``UnknownValueError`` when a value is not
known during preview. Rules first turn props into plain Python (:func:`plain`), where an
unknown value becomes :data:`UNKNOWN`, so a rule can skip it instead of crashing.

Rules are pure ``check`` functions; :func:`resource_rule` and :func:`stack_rule` wrap them
into pulumi_policy objects that merge config defaults and apply the ``allow`` list.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pulumi.output import Unknown as _OutputUnknown
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from swarm.kinds import LABEL_KIND, LABEL_NODE

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
BUILT_IMAGE = "docker:index/image:Image"
VOLUME = "docker:index/volume:Volume"


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()
"""Stands for a value the engine cannot know yet (preview). Falsy."""

SENTINELS = frozenset({
    UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE,
})
"""The engine's wire encoding of unknown values."""


def plain(value: Any) -> Any:
    """Deep-copy engine props into dicts/lists; unknown values become UNKNOWN."""
    if isinstance(value, _OutputUnknown) or (isinstance(value, str) and value in SENTINELS):
        return UNKNOWN
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_item(value, index) for index in range(len(value))]
    return value


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def known(value: Any) -> bool:
    return value is not UNKNOWN


def fully_known(value: Any) -> bool:
    """No UNKNOWN anywhere inside: rules that require something present skip otherwise."""
    if isinstance(value, Mapping):
        return all(fully_known(v) for v in value.values())
    if isinstance(value, list):
        return all(fully_known(v) for v in value)
    return known(value)


def dig(props: Any, *path: str, default: Any = None) -> Any:
    """``props[a][b]...``; ``default`` when a key is missing, UNKNOWN when unknown."""
    current = props
    for key in path:
        if current is UNKNOWN:
            return UNKNOWN
        if not isinstance(current, Mapping) or current.get(key) is None:
            return default
        current = current[key]
    return current


def items(value: Any) -> list[Any]:
    """A list prop as a list of known elements ([] when unset or unknown)."""
    if isinstance(value, list):
        return [element for element in value if known(element)]
    return []


def number(value: Any) -> float | None:
    """Numbers arrive as floats, some OCI ones as strings; None when not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    """Docker labels: ``[{label, value}]`` in inputs (a map is accepted too)."""
    raw = props.get("labels")
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items() if known(v)}
    found: dict[str, str] = {}
    for entry in items(raw):
        if isinstance(entry, Mapping) and isinstance(entry.get("label"), str) and known(entry.get("value")):
            found[entry["label"]] = str(entry.get("value"))
    return found


def node_of(props: Mapping[str, Any], provider_urn: str | None = None) -> str | None:
    return labels(props).get(LABEL_NODE) or provider_urn


def never_started(props: Mapping[str, Any]) -> bool:
    """A container created with `start=False` runs no process (a service's file loader): the
    rules about a running process (healthcheck, restart, read-only root, GPU) do not apply."""
    return props.get("start") is False


def kind_of(props: Mapping[str, Any]) -> str | None:
    """The container's service kind (`ai-swarm.kind` label), the key of reviewed exceptions."""
    return labels(props).get(LABEL_KIND)


# --- building policies -------------------------------------------------------------------

Check = Callable[[dict[str, Any], Mapping[str, Any]], Iterable[str]]


class Finding(NamedTuple):
    """One problem a stack rule found; ``name`` is matched against the allow list."""

    message: str
    urn: str | None = None
    name: str | None = None
    kind: str | None = None


StackCheck = Callable[[list[PolicyResource], Mapping[str, Any]], Iterable[Finding]]

ALLOW_SCHEMA = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "Resource logical names (fnmatch patterns) for which this policy is waived.",
}
ALLOW_KINDS_SCHEMA = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "Service kinds (the containers' ai-swarm.kind label) for which this policy is waived.",
}


def schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    """A config schema that always carries the ``allow`` list."""
    return PolicyConfigSchema(properties={"allow": ALLOW_SCHEMA, "allow_kinds": ALLOW_KINDS_SCHEMA, **properties})


def config_with_defaults(policy: Any, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with the given config, as the Pulumi engine does."""
    merged: dict[str, Any] = {}
    config_schema = getattr(policy, "config_schema", None)
    for key, spec in (config_schema.properties if config_schema else {}).items():
        if "default" in spec:
            merged[key] = spec["default"]
    merged.update({k: plain(v) for k, v in (given or {}).items() if k != "enforcementLevel"})
    return merged


def is_allowed(name: str | None, config: Mapping[str, Any], kind: str | None = None) -> bool:
    patterns = config.get("allow") or []
    if kind is not None and kind in (config.get("allow_kinds") or []):
        return True
    return name is not None and any(fnmatch.fnmatchcase(name, str(p)) for p in patterns)


def _waive(args: Any, report_violation: Any, policy_name: str, waived: list[Finding]) -> None:
    """Report waivers: to the local runner if it listens, else as 'not applicable'."""
    allowed = getattr(report_violation, "allowed", None)
    if allowed is not None:
        for finding in waived:
            allowed(f"waived by allow list: {finding.message}", finding.urn)
        return
    reasons = "; ".join(f"{f.name}: {f.message}" for f in waived)
    args.not_applicable(f"{policy_name} waived by allow list ({reasons})")


def resource_rule(
    name: str,
    description: str,
    types: str | Sequence[str],
    check: Check,
    level: EnforcementLevel = MANDATORY,
    **config: dict[str, Any],
) -> ResourceValidationPolicy:
    """A resource policy running ``check(props, config)`` on resources of ``types``."""
    wanted = {types} if isinstance(types, str) else set(types)
    policy: ResourceValidationPolicy

    def validate(args: ResourceValidationArgs, report_violation: Any) -> None:
        if args.resource_type not in wanted:
            return
        cfg = config_with_defaults(policy, args.get_config())
        props = plain(args.props)
        messages = list(check(props, cfg))
        if not messages:
            return
        if is_allowed(args.name, cfg, kind_of(props) if isinstance(props, Mapping) else None):
            _waive(args, report_violation, name, [Finding(m, args.urn, args.name) for m in messages])
            return
        for message in messages:
            report_violation(message, None)

    policy = ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level,
        config_schema=schema(**config),
    )
    return policy


def stack_rule(
    name: str,
    description: str,
    check: StackCheck,
    level: EnforcementLevel = MANDATORY,
    **config: dict[str, Any],
) -> StackValidationPolicy:
    """A stack policy running ``check(resources, config)``; findings carry their URN."""
    policy: StackValidationPolicy

    def validate(args: StackValidationArgs, report_violation: Any) -> None:
        cfg = config_with_defaults(policy, args.get_config())
        findings = list(check(list(args.resources), cfg))
        waived = [f for f in findings if is_allowed(f.name, cfg, f.kind)]
        for finding in findings:
            if finding not in waived:
                report_violation(finding.message, finding.urn)
        if waived and (getattr(report_violation, "allowed", None) or len(waived) == len(findings)):
            _waive(args, report_violation, name, waived)

    policy = StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level,
        config_schema=schema(**config),
    )
    return policy


def props_of(resource: PolicyResource) -> dict[str, Any]:
    props: dict[str, Any] = plain(resource.props)
    return props


def string_list(description: str, default: list[Any]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


def number_setting(description: str, default: float) -> dict[str, Any]:
    return {"type": "number", "default": default, "description": description}
