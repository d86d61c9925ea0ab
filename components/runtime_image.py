"""The runtime package's image (runtime/Dockerfile), built by the node's own Docker engine.

No registry is involved: the build context is sent over the node's SSH Docker host and the
image is built for that node's architecture (oracle is arm64, the GPU boxes amd64).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime"
RUNTIME_VERSION = "0.1.0"


@dataclass(frozen=True)
class RuntimeImageArgs:
    arch: str
    provider: docker.Provider


class RuntimeImage(pulumi.ComponentResource):
    """`image_name` is the tag containers run (`ai-swarm/swarm-runtime:<version>`)."""

    image_name: pulumi.Output[str]

    def __init__(self, name: str, args: RuntimeImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarm:runtime:RuntimeImage", name, None, opts)
        image = docker.Image(
            f"{name}-image",
            image_name=f"ai-swarm/swarm-runtime:{RUNTIME_VERSION}",
            build=docker.DockerBuildArgs(
                context=str(RUNTIME_DIR),
                dockerfile=str(RUNTIME_DIR / "Dockerfile"),
                platform=f"linux/{args.arch}",
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.image_name = image.image_name
        self.register_outputs({"image_name": self.image_name})
