"""An image built from this repository by the node's own Docker engine (no registry).

Paths are relative to the project root, so every checkout (CI, a laptop) sends the same
inputs; containers run `repo_digest`, so a rebuild rolls them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from swarm.kinds import TYPE_RUNTIME_IMAGE
from swarm.plan.types import Arch, BuiltImage


@dataclass(frozen=True)
class RuntimeImageArgs:
    image: BuiltImage
    arch: Arch
    provider: docker.Provider


class RuntimeImage(pulumi.ComponentResource):
    """`reference` is what containers run: the built image's digest (its ID on the node)."""

    reference: pulumi.Output[str]

    def __init__(self, name: str, args: RuntimeImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_RUNTIME_IMAGE, name, None, opts)
        image = docker.Image(
            f"{name}-image",
            image_name=args.image.ref,
            build=docker.DockerBuildArgs(
                context=args.image.context,
                dockerfile=args.image.dockerfile,
                platform=f"linux/{args.arch}",
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.reference = image.repo_digest
        self.register_outputs({"reference": self.reference})
