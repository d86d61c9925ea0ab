"""How the user-facing apps reach the services they use (LiteLLM, Qdrant, SearXNG, Pipelines).

A target on the same node is reached on the node's private network by its service name; one
on another node over the tailnet at its published port (a private-only target on another
node is a config error). Each link also gives the `Flow` the app declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarm.errors import Issue, SpecError, key_path
from swarm.plan.types import Arch, Flow, Image, PulledImage
from swarm.services.base import PlanContext, service_origin

LITELLM_KIND = "litellm"
LITELLM_PORT = 4000
"""LiteLLM's listen port inside its container (the proxy's default)."""


@dataclass(frozen=True)
class Link:
    target: str
    kind: str
    url: str
    port: int
    cross_node: bool

    def flow(self, source: str, purpose: str) -> Flow:
        return Flow(source=source, target=self.target, port=self.port, purpose=purpose, cross_node=self.cross_node)


def link(ctx: PlanContext, kind: str, from_node: str, internal_port: int, needed_by: str) -> Link | None:
    """The first configured service of `kind` as seen from `from_node`, or None if none is configured."""
    found = ctx.first_of(kind)
    if found is None:
        return None
    name, service = found
    if service.node == from_node:
        return Link(name, kind, f"http://{name}:{internal_port}", internal_port, cross_node=False)
    if service.port is None:
        raise SpecError([Issue(key_path("services", name, "port"),
                               f"{needed_by!r} on node {from_node!r} needs {name!r} on node {service.node!r}; "
                               "publish it on the tailnet (set a port) or place both on one node")])
    return Link(name, kind, ctx.url(service.node, service.port), service.port, cross_node=True)


def require(ctx: PlanContext, kind: str, from_node: str, internal_port: int, needed_by: str) -> Link:
    found = link(ctx, kind, from_node, internal_port, needed_by)
    if found is None:
        raise SpecError([Issue(service_origin(needed_by),
                               f"{needed_by!r} needs a {kind!r} service; add one under ai-swarm:services")])
    return found


def gateway(ctx: PlanContext, from_node: str, needed_by: str) -> Link:
    """LiteLLM, where every app gets its models (each with a key of its own)."""
    return require(ctx, LITELLM_KIND, from_node, LITELLM_PORT, needed_by)


def registered(kind: str) -> bool:
    """Whether a module places `kind` (a flow to an unplaced target fails the plan)."""
    from swarm.services import REGISTRY  # the registry imports the app modules

    return kind in REGISTRY


def flows(source: str, *links: tuple[Link | None, str]) -> tuple[Flow, ...]:
    """Flows to every linked target that a registered module places."""
    return tuple(found.flow(source, purpose) for found, purpose in links
                 if found is not None and registered(found.kind))


def pinned_image(ctx: PlanContext, name: str, default: Image | None) -> Image:
    """The service's `image` override (operator pin) or the module's default (pulled by digest or built)."""
    override = ctx.spec.services[name].image
    platforms: frozenset[Arch] = default.platforms if default else frozenset({"amd64"})
    if override is None:
        if default is None:
            raise SpecError([Issue(key_path("services", name, "image"), _NO_IMAGE.get(ctx.spec.service_kind(name),
                                   "this kind has no published image; pin one as repo:tag@sha256:<digest>"))])
        return default
    reference, _, digest = override.partition("@")
    slash, colon = reference.rfind("/"), reference.rfind(":")
    repository, tag = (reference[:colon], reference[colon + 1:]) if colon > slash else (reference, "latest")
    return PulledImage(repository, tag, digest, platforms)


_NO_IMAGE = {
    "sillytavern-extras": (
        "SillyTavern-Extras was archived upstream (April 2024) and never published an image; build it from the "
        "archived repository's Dockerfile, push it, and pin it here as repo:tag@sha256:<digest> (amd64)"),
}
