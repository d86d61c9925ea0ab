"""One insecure change at a time, and the policy that must catch it (mandatory).

``MUTATIONS`` is a reusable table: ``(label, mutate(props) -> new props, policy name)``.
``mutate`` never changes its argument. Apply it to any container's captured props (the
prod plan's containers or the fixtures) and run the pack: ``expected`` must fire.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import Policy

from policies.local_runner import ResourceSnapshot, Verdict, run_policies

Props = dict[str, Any]
Mutation = tuple[str, Callable[[Props], Props], str]

FAKE_OPENAI_KEY = "sk-proj-" + "Ab3" * 12


def _edit(change: Callable[[Props], None]) -> Callable[[Props], Props]:
    def mutate(props: Props) -> Props:
        new = copy.deepcopy(dict(props))
        change(new)
        return new

    return mutate


def _set(key: str, value: Any) -> Callable[[Props], Props]:
    return _edit(lambda p: p.__setitem__(key, value))


def _ports(ip: str | None) -> Callable[[Props], None]:
    def change(p: Props) -> None:
        ports = [dict(port) for port in p.get("ports") or []] or [
            {"internal": 8080.0, "external": 18080.0, "protocol": "tcp"}
        ]
        for port in ports:
            port.pop("ip", None)
            if ip is not None:
                port["ip"] = ip
        p["ports"] = ports

    return change


def _append(key: str, value: Any) -> Callable[[Props], None]:
    return lambda p: p.__setitem__(key, [*(p.get(key) or []), value])


def _cap_add(cap: str) -> Callable[[Props], None]:
    def change(p: Props) -> None:
        caps = dict(p.get("capabilities") or {})
        caps["adds"] = [*(caps.get("adds") or []), cap]
        p["capabilities"] = caps

    return change


MUTATIONS: list[Mutation] = [
    ("privileged", _set("privileged", True), "container-no-privileged"),
    ("user root", _set("user", "root"), "container-non-root-user"),
    ("user 0:0", _set("user", "0:0"), "container-non-root-user"),
    ("user unset", _edit(lambda p: p.pop("user", None)), "container-non-root-user"),
    ("port on 0.0.0.0", _edit(_ports("0.0.0.0")), "container-ports-bound-to-ip"),
    ("port on ::", _edit(_ports("::")), "container-ports-bound-to-ip"),
    ("port without ip", _edit(_ports(None)), "container-ports-bound-to-ip"),
    ("image :latest", _set("image", "vllm/vllm-openai:latest"), "image-tag-pinned"),
    ("image untagged", _set("image", "registry.local:5000/vllm/vllm-openai"), "image-tag-pinned"),
    (
        "plaintext OPENAI_API_KEY",
        _edit(_append("envs", f"OPENAI_API_KEY={FAKE_OPENAI_KEY}")),
        "container-no-plaintext-secrets",
    ),
    (
        "key value under a harmless name",
        _edit(_append("envs", f"EXTRA_ARGS=--key {FAKE_OPENAI_KEY}")),
        "container-no-plaintext-secrets",
    ),
    (
        "docker.sock mount",
        _edit(_append("volumes", {"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"})),
        "container-no-docker-socket",
    ),
    ("cap_add SYS_ADMIN", _edit(_cap_add("SYS_ADMIN")), "container-no-dangerous-capabilities"),
    (
        "seccomp unconfined",
        _edit(_append("securityOpts", "seccomp=unconfined")),
        "container-no-unconfined-profiles",
    ),
    ("network_mode host", _set("networkMode", "host"), "container-no-host-namespaces"),
]


def mutated(snapshot: ResourceSnapshot, mutate: Callable[[Props], Props]) -> ResourceSnapshot:
    return dataclasses.replace(snapshot, props=mutate(snapshot.props))


def caught_by(snapshot: ResourceSnapshot, verdicts: list[Verdict], policy: str) -> bool:
    return any(v.policy == policy and v.urn == snapshot.urn and v.level == "mandatory" for v in verdicts)


def check_mutation(
    snapshot: ResourceSnapshot,
    mutation: Mutation,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    others: list[ResourceSnapshot] | None = None,
    policies: Iterable[Policy] | None = None,
) -> tuple[bool, list[Verdict]]:
    """Apply one mutation to ``snapshot`` and run ``policies`` (default: the whole pack);
    (caught as mandatory?, verdicts)."""
    _, mutate, expected = mutation
    changed = mutated(snapshot, mutate)
    verdicts = run_policies([*(others or []), changed], config, policies)
    return caught_by(changed, verdicts, expected), verdicts
