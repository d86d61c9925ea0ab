"""Stack-wide rules: protected state, unique host ports per node, secrets kept out of env.

``container-healthcheck`` (containers.py) already runs on every container, so "every
container has a healthcheck" is not repeated here (one rule, one report per container).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from swarm.kinds import LABEL_VOLUME_ROLE, VOLUME_ROLE_GENERATED

from ._props import (
    CONTAINER,
    VOLUME,
    Finding,
    items,
    kind_of,
    known,
    labels,
    node_of,
    number,
    props_of,
    stack_rule,
    string_list,
)

Config = Mapping[str, Any]
ANY_IP = {"", "0.0.0.0", "::", "[::]"}


def check_protected(resources: list[PolicyResource], cfg: Config) -> Iterator[Finding]:
    for r in resources:
        if r.resource_type not in cfg["stateful_types"] or r.opts.protect:
            continue
        props = props_of(r)
        if labels(props).get(LABEL_VOLUME_ROLE) == VOLUME_ROLE_GENERATED:
            continue  # holds only files the program writes again on every create
        kind = r.resource_type.rsplit(":", 1)[-1]
        yield Finding(f"{kind} {r.name!r} holds state but is not protected; create it with "
                      "opts=ResourceOptions(protect=True) (or allow-list a scratch volume).",
                      r.urn, r.name, kind_of(props))


def _bindings(resource: PolicyResource) -> list[tuple[str, int, str]]:
    found = []
    for port in items(props_of(resource).get("ports")):
        if not isinstance(port, Mapping):
            continue
        external = number(port.get("external"))
        ip = port.get("ip")
        if external is None or not known(ip):
            continue  # docker picks an ephemeral port, or the address is not known yet
        found.append((str(ip or ""), int(external), str(port.get("protocol") or "tcp").lower()))
    return found


def _clash(a: tuple[str, int, str], b: tuple[str, int, str]) -> bool:
    same_port = a[1:] == b[1:]
    return same_port and (a[0] == b[0] or a[0] in ANY_IP or b[0] in ANY_IP)


def check_unique_ports(resources: list[PolicyResource], _: Config) -> Iterator[Finding]:
    seen: dict[str, list[tuple[tuple[str, int, str], PolicyResource]]] = {}
    for r in sorted((r for r in resources if r.resource_type == CONTAINER), key=lambda r: r.urn):
        node = node_of(props_of(r), r.provider.urn if r.provider else None) or "<default provider>"
        for binding in _bindings(r):
            for other_binding, other in seen.get(node, []):
                if other is not r and _clash(binding, other_binding):
                    ip, port, proto = binding
                    yield Finding(f"{r.name!r} and {other.name!r} both publish {ip or '*'}:{port}/{proto} on "
                                  f"node {node!r}; give one of them another host port.", r.urn, r.name)
            seen.setdefault(node, []).append((binding, r))


def check_secrets_not_in_env(resources: list[PolicyResource], cfg: Config) -> Iterator[Finding]:
    for r in resources:
        if r.resource_type != CONTAINER:
            continue
        sources = sorted({d.name for d in r.property_dependencies.get("envs", [])
                          if d.resource_type in cfg["secret_sources"]})
        if sources:
            yield Finding(f"envs of {r.name!r} are built from secret resources {sources}; upload the "
                          "value to /run/secrets/<name> (uploads) and set <NAME>_FILE instead.",
                          r.urn, r.name)


SECRET_SOURCES = ["random:index/randomPassword:RandomPassword", "tailscale:index/tailnetKey:TailnetKey",
                  "tls:index/privateKey:PrivateKey"]

POLICIES = [
    stack_rule("stateful-volumes-protected", "Stateful volumes are protected from deletion.", check_protected,
               stateful_types=string_list("Type tokens that hold state.", [VOLUME])),
    stack_rule("unique-host-ports", "No two containers on one node publish the same host ip:port/protocol.",
               check_unique_ports),
    stack_rule("container-secrets-not-in-env", "Secret resources never flow into container env.",
               check_secrets_not_in_env,
               secret_sources=string_list("Type tokens whose outputs are secrets.", SECRET_SOURCES)),
]
