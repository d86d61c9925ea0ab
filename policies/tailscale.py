"""Tailscale rules: default-deny ACL, owned tags, ACL tests, tight auth keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from ._props import (
    Finding,
    fully_known,
    items,
    known,
    number,
    number_setting,
    props_of,
    resource_rule,
    stack_rule,
)

Props = dict[str, Any]
Config = Mapping[str, Any]

ACL = "tailscale:index/acl:Acl"
KEY = "tailscale:index/tailnetKey:TailnetKey"
DEVICE_TAGS = "tailscale:index/deviceTags:DeviceTags"
TAG = re.compile(r"tag:[A-Za-z0-9][A-Za-z0-9-]*")
_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def parse_hujson(text: str) -> Any:
    """JSON, or HuJSON (comments, trailing commas) reduced to JSON. Raises ValueError."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    stripped = _STRING_OR_COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    parts = re.split(r'("(?:\\.|[^"\\])*")', stripped)
    return json.loads("".join(p if p.startswith('"') else _TRAILING_COMMA.sub(r"\1", p) for p in parts))


def policy_document(props: Props) -> tuple[dict[str, Any] | None, str | None]:
    """(document, error): the parsed ``acl`` prop; (None, None) when unknown."""
    text = props.get("acl")
    if not known(text) or text is None:
        return None, None
    try:
        document = parse_hujson(str(text))
    except ValueError as exc:
        return None, f"acl is not valid JSON/HuJSON ({exc}); fix the generated policy."
    return (document, None) if isinstance(document, dict) else (None, "acl must be a JSON object.")


def _strings(value: Any) -> list[str]:
    return [str(v) for v in items(value)] if isinstance(value, list) else []


def _entries(document: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    return [e for e in items(document.get(section)) if isinstance(e, Mapping)]


def check_allow_all(props: Props, _: Config) -> Iterator[str]:
    document, error = policy_document(props)
    if error:
        yield error
    if document is None:
        return
    for rule in _entries(document, "acls"):
        if (str(rule.get("action", "accept")) == "accept" and "*" in _strings(rule.get("src"))
                and "*:*" in _strings(rule.get("dst"))):
            yield "acls has an allow-all rule (src '*' -> dst '*:*'); list tagged sources and dst ports."
    for grant in _entries(document, "grants"):
        ip = _strings(grant.get("ip")) or ["*"]
        if "*" in _strings(grant.get("src")) and "*" in _strings(grant.get("dst")) and "*" in ip:
            yield "grants has an allow-all grant (src '*' -> dst '*', ip '*'); grant specific tags and ports."


def used_tags(document: Mapping[str, Any]) -> set[str]:
    sections = ("acls", "grants", "tests", "sshTests", "ssh", "autoApprovers")
    return set(TAG.findall(json.dumps([document.get(s) for s in sections])))


def owned_tags(document: Mapping[str, Any]) -> set[str]:
    owners = document.get("tagOwners")
    return set(owners) if isinstance(owners, Mapping) else set()


def check_tags_owned(props: Props, _: Config) -> Iterator[str]:
    document, _error = policy_document(props)
    if document is None:
        return
    missing = sorted(used_tags(document) - owned_tags(document))
    if missing:
        yield f"tags {missing} are used but have no tagOwners entry; add them to tagOwners."


def check_tests(props: Props, _: Config) -> Iterator[str]:
    document, _error = policy_document(props)
    if document is None:
        return
    tests = _entries(document, "tests")
    if not tests:
        yield "acl has no tests; generate accept and deny tests from the service graph."
    elif not any(_strings(t.get("deny")) for t in tests):
        yield "acl tests have no deny case; add tests proving that unrelated tags are denied."


def check_key_tagged(props: Props, _: Config) -> Iterator[str]:
    tags = props.get("tags")
    if fully_known(tags) and not _strings(tags):
        yield "auth key has no tags (devices would be owned by a user); set tags=['tag:<role>']."


def check_key_reusable(props: Props, _: Config) -> Iterator[str]:
    if props.get("reusable") is True and props.get("ephemeral") is not True:
        yield "reusable auth key that is not ephemeral; use reusable=False or ephemeral=True."


def check_key_expiry(props: Props, cfg: Config) -> Iterator[str]:
    expiry = props.get("expiry")
    if not known(expiry):
        return
    seconds = number(expiry) if expiry is not None else cfg["default_expiry_days"] * 86400
    if seconds is None or seconds <= 0 or seconds > cfg["max_expiry_days"] * 86400:
        yield f"expiry={expiry!r} s; set expiry to at most {cfg['max_expiry_days']:g} days in seconds."


def check_key_tags_owned(resources: list[PolicyResource], _: Config) -> Iterator[Finding]:
    owned: set[str] = set()
    acls = [r for r in resources if r.resource_type == ACL]
    for acl in acls:
        document, _error = policy_document(props_of(acl))
        owned |= owned_tags(document or {})
    if not acls:
        return
    for tagged in (r for r in resources if r.resource_type in (KEY, DEVICE_TAGS)):
        missing = sorted(set(_strings(props_of(tagged).get("tags"))) - owned)
        what = "auth key" if tagged.resource_type == KEY else "device"
        if missing:
            yield Finding(f"{what} tags {missing} have no tagOwners entry in the ACL; add them.",
                          tagged.urn, tagged.name)


POLICIES = [
    resource_rule("tailscale-acl-no-allow-all", "The tailnet policy is default-deny (no '*' -> '*:*').",
                  ACL, check_allow_all),
    resource_rule("tailscale-acl-tags-owned", "Every tag used in the ACL has tagOwners.",
                  ACL, check_tags_owned),
    resource_rule("tailscale-acl-tests", "The ACL carries tests, including deny cases.", ACL, check_tests),
    resource_rule("tailscale-key-tagged", "Auth keys are tagged.", KEY, check_key_tagged),
    resource_rule("tailscale-key-not-reusable", "Auth keys are single-use unless ephemeral.",
                  KEY, check_key_reusable),
    resource_rule("tailscale-key-expiry", "Auth keys expire within a bounded time.", KEY, check_key_expiry,
                  max_expiry_days=number_setting("Longest accepted key lifetime (days).", 90),
                  default_expiry_days=number_setting("Tailscale's default when expiry is unset (days).", 90)),
    stack_rule("tailscale-key-tags-owned", "Every auth key and device tag is owned in the managed ACL.",
               check_key_tags_owned),
]
