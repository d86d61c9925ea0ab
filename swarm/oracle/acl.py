"""The tailnet policy, generated from the plan's flows: default deny, owned tags, generated tests.

Every connection the swarm needs is a `Flow` some service module declared; a flow whose two
ends sit on different nodes crosses the tailnet and becomes one `accept` from the source
node's tag to the target node's tag on that port. Three more kinds of access exist: the
operators reach the user-facing UIs, and the Pulumi runner reaches every node's SSH (Docker
provider, readiness). Nothing else is allowed (no `*`).

The `tests` section is generated from the same grants: per principal, every allowed
destination is an `accept` case and every other interesting destination (any granted one,
SSH, PostgreSQL, Redis, raw vLLM ports) a `deny` case. Tailscale refuses a policy whose
tests fail; `check_acl` runs the same evaluation here first, so a bad policy stops `swarm
plan` (exit 2) before it reaches the provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from swarm.errors import Issue, SpecError, key_path
from swarm.kinds import EXTERNAL_PREFIX, USER_FACING_KINDS
from swarm.oracle.tags import all_tags, node_tag, operators_group, runner_tag
from swarm.plan.types import SwarmPlan

SSH_PORT = 22
ACL_PATH = "tailscale/acl.hujson"
CONFIG_KEY = key_path("tailnet")
# Configured kinds whose port must never be reachable from a node no flow names.
SENSITIVE_KINDS = {"postgres": 5432, "redis": 6379}
ADMINS = "autogroup:admin"
TAG = re.compile(r"tag:[A-Za-z0-9][A-Za-z0-9-]*")


@dataclass(frozen=True)
class Grant:
    """`src` (a tag, group or autogroup) may open TCP connections to `dst` (a node tag) on `port`."""

    src: str
    dst: str
    port: int
    purpose: str


@dataclass(frozen=True)
class Probe:
    """A destination every principal is tested against (accept if granted, deny otherwise)."""

    dst: str
    port: int
    why: str


def _node_of(plan: SwarmPlan, name: str) -> str | None:
    if name in plan.spec.inference:
        return plan.spec.inference[name].node
    return next((service.node for service in plan.services if service.name == name), None)


def operators_principal(plan: SwarmPlan) -> str:
    """The operators' group, or the tailnet's admins while no operator is configured."""
    return operators_group(plan.spec) if plan.spec.tailnet.operators else ADMINS


def grants(plan: SwarmPlan) -> tuple[Grant, ...]:
    """Every allowed (source, node, port): cross-node flows, operators to UIs, runner to SSH."""
    spec = plan.spec
    found: list[Grant] = []
    for flow in plan.flows:
        if flow.target.startswith(EXTERNAL_PREFIX):
            continue
        src, dst = _node_of(plan, flow.source), _node_of(plan, flow.target)
        if src is None or dst is None or src == dst:  # same node: the private network, not the tailnet
            continue
        found.append(Grant(node_tag(spec, src), node_tag(spec, dst), flow.port,
                           f"{flow.source} -> {flow.target} ({flow.purpose})"))
    operators = operators_principal(plan)
    for service in plan.services:
        if service.kind in USER_FACING_KINDS:
            found.extend(Grant(operators, node_tag(spec, service.node), port.host, f"operators -> {service.name}")
                         for port in service.ports)
    for node in spec.nodes:
        found.append(Grant(runner_tag(spec), node_tag(spec, node), SSH_PORT,
                           "Pulumi runner -> SSH (Docker provider, readiness)"))
        if spec.tailnet.operators_ssh:
            found.append(Grant(operators, node_tag(spec, node), SSH_PORT, "operators -> SSH"))
    return tuple(found)


def probes(plan: SwarmPlan, granted: Iterable[Grant]) -> tuple[Probe, ...]:
    """Destinations worth a deny case: every granted one plus SSH, databases and raw vLLM."""
    spec = plan.spec
    found: dict[tuple[str, int], str] = {(g.dst, g.port): g.purpose for g in granted}
    for node in spec.nodes:
        found[(node_tag(spec, node), SSH_PORT)] = f"SSH on {node}"
    for name, service in spec.services.items():
        kind = spec.service_kind(name)
        if kind in SENSITIVE_KINDS:
            found[(node_tag(spec, service.node), service.port or SENSITIVE_KINDS[kind])] = f"{kind} {name}"
    for name, deployment in spec.inference.items():
        found[(node_tag(spec, deployment.node), deployment.port)] = f"raw vLLM {name} (only via the router)"
    return tuple(Probe(dst, port, why) for (dst, port), why in sorted(found.items()))


def build_acl(plan: SwarmPlan) -> dict[str, Any]:
    """The policy document (before HuJSON rendering); `check_acl` has already accepted it."""
    spec = plan.spec
    granted = grants(plan)
    rules: dict[tuple[str, str], list[Grant]] = {}
    for grant in granted:
        rules.setdefault((grant.src, grant.dst), []).append(grant)
    document: dict[str, Any] = {"tagOwners": {tag: list(spec.tailnet.tag_owners) for tag in all_tags(spec)}}
    if spec.tailnet.operators:
        document["groups"] = {operators_group(spec): list(spec.tailnet.operators)}
    document["acls"] = [
        {"action": "accept", "src": [src], "proto": "tcp",
         "dst": [f"{dst}:{port}" for port in sorted({g.port for g in members})]}
        for (src, dst), members in sorted(rules.items())
    ]
    document["tests"] = list(_tests(plan, granted))
    check_acl(document)
    return document


def _tests(plan: SwarmPlan, granted: tuple[Grant, ...]) -> Iterator[dict[str, Any]]:
    spec = plan.spec
    principals = {node_tag(spec, node): (node_tag(spec, node),) for node in spec.nodes}
    principals[runner_tag(spec)] = (runner_tag(spec),)
    if spec.tailnet.operators:  # tests need a user; the group's first member stands for it
        principals[spec.tailnet.operators[0]] = (operators_group(spec),)
    all_probes = probes(plan, granted)
    for test_src, identities in principals.items():
        allowed = {(g.dst, g.port) for g in granted if g.src in identities}
        accept = sorted(f"{dst}:{port}" for dst, port in allowed)
        deny = [f"{p.dst}:{p.port}" for p in all_probes
                if (p.dst, p.port) not in allowed and p.dst not in identities]
        case: dict[str, Any] = {"src": test_src, "proto": "tcp"}
        if accept:
            case["accept"] = accept
        if deny:
            case["deny"] = deny
        if accept or deny:
            yield case


def _port_matches(spec: str, port: int) -> bool:
    for part in spec.split(","):
        low, _, high = part.partition("-")
        if part == "*" or (low.isdigit() and int(low) <= port <= int(high or low)):
            return True
    return False


def allows(document: Mapping[str, Any], src: str, dst: str, port: int) -> bool:
    """Whether the policy's `acls` let `src` (user, tag) reach `dst` (tag or host) on TCP `port`."""
    groups = document.get("groups") or {}
    for rule in document.get("acls") or []:
        sources = rule.get("src") or []
        if not any(s in ("*", src) or src in groups.get(s, ()) for s in sources):
            continue
        for target in rule.get("dst") or []:
            host, _, ports = str(target).rpartition(":")
            if host in ("*", dst) and _port_matches(ports, port):
                return True
    return False


def acl_problems(document: Mapping[str, Any], key_tags: Iterable[str] = ()) -> list[str]:
    """Why Tailscale (or this project) would refuse the policy; empty when it is fine."""
    problems: list[str] = []
    for rule in document.get("acls") or []:
        if "*" in (rule.get("src") or []) or any(str(d).startswith("*:") for d in rule.get("dst") or []):
            problems.append(f"allow-all rule {json.dumps(rule)}: name tagged sources and destinations")
    for grant in document.get("grants") or []:
        if "*" in (grant.get("src") or []) or "*" in (grant.get("dst") or []):
            problems.append(f"allow-all grant {json.dumps(grant)}")
    owners = document.get("tagOwners") or {}
    sections = json.dumps([document.get(s) for s in ("acls", "grants", "tests", "ssh", "autoApprovers")])
    used = set(TAG.findall(sections)) | set(key_tags)
    problems.extend(f"tag {tag} is used but has no tagOwners entry" for tag in sorted(used - set(owners)))
    problems.extend(f"tag {tag} has an empty tagOwners list" for tag, who in sorted(owners.items()) if not who)
    if not any(test.get("deny") for test in document.get("tests") or []):
        problems.append("no deny test: default deny is unproven")
    for test in document.get("tests") or []:
        for expected, targets in ((True, test.get("accept") or []), (False, test.get("deny") or [])):
            for target in targets:
                host, _, port = str(target).rpartition(":")
                if allows(document, str(test.get("src")), host, int(port)) is not expected:
                    problems.append(f"test {test.get('src')} -> {target} expects "
                                    f"{'accept' if expected else 'deny'} but the rules say otherwise")
    return problems


def check_acl(document: Mapping[str, Any], key_tags: Iterable[str] = ()) -> None:
    """Refuse (exit 2, naming `ai-swarm:tailnet`) a policy with allow-all, unowned tags or failing tests."""
    problems = acl_problems(document, key_tags)
    if problems:
        raise SpecError([Issue(CONFIG_KEY, f"tailnet policy refused: {problem}") for problem in problems])


_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def parse_policy(text: str) -> dict[str, Any]:
    """HuJSON (comments, trailing commas) to data; raises ValueError on anything else."""
    def strip(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token.startswith('"') else ""

    without_comments = _STRING_OR_COMMENT.sub(strip, text)
    parts = re.split(r'("(?:\\.|[^"\\])*")', without_comments)
    document = json.loads("".join(p if p.startswith('"') else _TRAILING_COMMA.sub(r"\1", p) for p in parts))
    if not isinstance(document, dict):
        raise ValueError("a tailnet policy is a JSON object")
    return document


def render_acl(plan: SwarmPlan) -> str:
    """The policy as HuJSON: each accept rule carries a comment naming the flows it serves."""
    document = build_acl(plan)
    purposes: dict[tuple[str, str], list[str]] = {}
    for grant in grants(plan):
        purposes.setdefault((grant.src, grant.dst), []).append(f"{grant.purpose} :{grant.port}")
    lines = ["// Tailnet policy of ai-swarm. Generated by `python -m swarm render` from the plan's",
             "// flows; do not edit (the program overwrites it). Default deny: only what is listed here.",
             "{"]
    for section, value in document.items():
        if section != "acls":
            body = json.dumps(value, indent=2).replace("\n", "\n  ")
            lines.append(f'  "{section}": {body},')
            continue
        lines.append('  "acls": [')
        for rule in value:
            for purpose in sorted(set(purposes[(rule["src"][0], rule["dst"][0].rpartition(":")[0])])):
                lines.append(f"    // {purpose}")
            lines.append(f"    {json.dumps(rule)},")
        lines.append("  ],")
    lines.append("}")
    return "\n".join(lines) + "\n"
