"""Pulumi.yaml as the CLI reads it: declarations the project schema accepts, nothing required by accident.

The rules are those of Pulumi's project schema (`sdk/go/common/workspace/project.json`,
`configTypeDeclaration`): a declaration is a scalar or an object with a `type` among
string/integer/boolean/array and only the keys type/items/description/secret/default.
"""

from __future__ import annotations

from typing import Any

import yaml

from swarm.stack_config import STRUCTURED_KEYS
from tests.conftest import REPO

SIMPLE_TYPES = {"string", "integer", "boolean", "array"}
DECLARATION_KEYS = {"type", "items", "description", "secret", "default"}


def _declarations() -> dict[str, Any]:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    return dict(project.get("config") or {})


def test_every_declaration_has_a_schema_type() -> None:
    for key, declaration in _declarations().items():
        if not isinstance(declaration, dict):
            assert isinstance(declaration, str | int | bool), key
            continue
        assert set(declaration) <= DECLARATION_KEYS, f"{key}: {set(declaration) - DECLARATION_KEYS}"
        assert declaration.get("type") in SIMPLE_TYPES, f"{key}: needs a type among {sorted(SIMPLE_TYPES)}"
        if declaration["type"] == "array":
            assert "items" in declaration, key


def test_secret_keys_are_typed_so_the_cli_enforces_secret() -> None:
    secrets = {key: d for key, d in _declarations().items() if isinstance(d, dict) and d.get("secret")}
    assert secrets, "the provider keys are declared as secrets"
    assert all(d["type"] == "string" and "default" not in d for d in secrets.values())


def test_structured_keys_are_not_declared_so_no_stack_must_set_them() -> None:
    # A declared key without a default is required in every stack; objects cannot have a type.
    assert not set(_declarations()) & set(STRUCTURED_KEYS)
