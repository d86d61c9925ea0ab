"""Pinned registry images for the inference and gateway services, and the operator's override.

Each digest below was read from public sources (named next to it); re-check one with
`docker buildx imagetools inspect <repo>:<tag>` before changing a tag.
"""

from __future__ import annotations

from swarm.plan.types import Arch, PulledImage
from swarm.services.base import PlanContext

BOTH: frozenset[Arch] = frozenset({"amd64", "arm64"})


def override(ctx: PlanContext, name: str, default: PulledImage) -> PulledImage:
    """`services.<name>.image` (repo:tag@sha256:..., validated by the model) or `default`.

    An override keeps the default's platform list: pin the same image family for another version."""
    pinned = ctx.spec.services[name].image if name in ctx.spec.services else None
    if pinned is None:
        return default
    reference, _, digest = pinned.partition("@")
    slash, colon = reference.rfind("/"), reference.rfind(":")
    repository, tag = (reference[:colon], reference[colon + 1:]) if colon > slash else (reference, default.tag)
    return PulledImage(repository, tag, digest, default.platforms)
