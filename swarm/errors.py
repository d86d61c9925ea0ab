"""Configuration errors that name the stack-config key path at fault."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

NAMESPACE = "ai-swarm"


@dataclass(frozen=True)
class Issue:
    """One problem in the stack configuration: where it is and what is allowed instead."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(Exception):
    """The stack configuration is invalid or infeasible; nothing may be registered."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"invalid stack configuration ({len(self.issues)} problem(s)):\n{lines}")


def key_path(key: str, *parts: str | int) -> str:
    """`ai-swarm:nodes`, 'starlord', 'gpus', 0 -> `ai-swarm:nodes.starlord.gpus[0]`."""
    path = key if ":" in key else f"{NAMESPACE}:{key}"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def issues_from_validation(error: ValidationError) -> list[Issue]:
    """Translate pydantic's errors into key paths rooted at the stack config keys."""
    issues = []
    for detail in error.errors():
        location = [part for part in detail["loc"] if not _is_union_tag(part)]
        if not location:
            issues.append(Issue(key_path("config"), detail["msg"]))
            continue
        head, *rest = location
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README 'Stack configuration')"
        elif detail["type"] == "literal_error":
            message = f"{message}, got {detail.get('input')!r}"
        issues.append(Issue(key_path(str(head), *rest), message))
    return issues


def _is_union_tag(part: object) -> bool:
    # pydantic inserts the tried type's name (e.g. 'int', 'function-after[...]') into locations.
    return isinstance(part, str) and ("[" in part or part in {"int", "float", "str", "bool"})


def raise_if(issues: Iterable[Issue]) -> None:
    found = list(issues)
    if found:
        raise SpecError(found)
