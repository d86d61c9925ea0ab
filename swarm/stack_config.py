"""From stack configuration (a Pulumi stack file, or `pulumi.Config`) to a validated `SwarmSpec`.

The same `build_spec` runs inside `pulumi up` and in the offline plan, so an error found
offline is the error `pulumi preview` would stop on, with the same key path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from swarm.checks import check_spec
from swarm.errors import NAMESPACE, Issue, SpecError, issues_from_validation, key_path, raise_if
from swarm.model import LITERAL_SECRET, SECRET_NAME, SwarmSpec

STRUCTURED_KEYS = ("nodes", "models", "inference", "services", "providers", "agents", "capacity", "tailnet",
                   "alerting")
OFFLINE_SECRET_PLACEHOLDER = "offline-placeholder-not-a-secret"


@dataclass(frozen=True)
class StackConfig:
    """Raw stack configuration: full keys (`ai-swarm:nodes`) to values, and which are secure."""

    values: Mapping[str, Any]
    secure_keys: frozenset[str]
    source: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise SpecError([Issue(f"{key_node.start_mark.name}:{line}",
                                   f"duplicate key {key!r}: already defined on line {seen[key]}")])
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_stack_file(path: Path) -> StackConfig:
    """Parse a `Pulumi.<stack>.yaml`. Secure values cannot be decrypted offline: they become
    placeholders, still marked secret, so the program runs exactly as under `pulumi preview`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([Issue(str(path), f"cannot read stack file: {exc.strerror}")]) from exc
    try:
        loader = _StrictLoader(text)
        loader.name = str(path)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise SpecError([Issue(str(path), f"not valid YAML: {exc}")]) from exc
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise SpecError([Issue(str(path), "a stack file needs a top-level 'config:' mapping")])
    values: dict[str, Any] = {}
    secure: set[str] = set()
    for raw_key, value in document["config"].items():
        key = raw_key if ":" in str(raw_key) else f"{NAMESPACE}:{raw_key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(key)
            value = OFFLINE_SECRET_PLACEHOLDER
        values[key] = value
    return StackConfig(values, frozenset(secure), str(path))


def build_spec(config: StackConfig) -> SwarmSpec:
    """Validate the whole configuration; raise `SpecError` listing every problem found."""
    raise_if([*_key_issues(config), *_literal_secret_issues(config)])
    structured = {key: config.values[key_path(key)] for key in STRUCTURED_KEYS if key_path(key) in config.values}
    try:
        spec = SwarmSpec.model_validate(structured)
    except ValidationError as exc:
        raise SpecError(issues_from_validation(exc)) from None
    raise_if(check_spec(spec))
    return spec


def required_secrets(spec: SwarmSpec) -> list[str]:
    """Config keys the operator must set with `pulumi config set --secret` (the rest is generated)."""
    return sorted({*(name for provider in spec.providers.values() for name in provider.api_key_secrets),
                   *(name for receiver in spec.alerting.receivers.values() for name in receiver.secret_keys())})


def _key_issues(config: StackConfig) -> Iterator[Issue]:
    for key in config.values:
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE or name in STRUCTURED_KEYS:
            continue
        if not SECRET_NAME.search(name):
            yield Issue(key, f"unknown key; {NAMESPACE} reads {list(STRUCTURED_KEYS)} and secret keys")
        elif key not in config.secure_keys:
            yield Issue(key, f"holds a literal secret; set it with `pulumi config set --secret {name}`")


def _literal_secret_issues(config: StackConfig) -> Iterator[Issue]:
    for key, value in config.values.items():
        if key in config.secure_keys:
            continue
        for path, text in _strings(value, key):
            if LITERAL_SECRET.search(text):
                yield Issue(path, "looks like a credential; keep it in a secret config key "
                                  "(`pulumi config set --secret NAME`) and reference NAME")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for child_key, child in value.items():
            yield from _strings(child, f"{path}.{child_key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _strings(child, f"{path}[{index}]")
