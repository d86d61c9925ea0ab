"""The images a node runs: pulled ones pinned by digest, built ones by their repo digest.

One resource per image and node, however many containers use it.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.node_runtime import NodeRuntime
from components.runtime_image import RuntimeImage, RuntimeImageArgs
from swarm.plan.types import Arch, BuiltImage, Image


class NodeImages:
    """Creates each image resource on first use, under the node's component."""

    def __init__(self, node: str, runtime: NodeRuntime, arch: Arch) -> None:
        self._node = node
        self._runtime = runtime
        self._arch = arch
        self._references: dict[str, pulumi.Output[str]] = {}

    def reference(self, image: Image) -> pulumi.Output[str]:
        """What a container's `image` input should be for `image` on this node."""
        if image.ref not in self._references:
            self._references[image.ref] = self._create(image)
        return self._references[image.ref]

    def _create(self, image: Image) -> pulumi.Output[str]:
        node = self._runtime
        slug = image.ref.split("@")[0].split("/")[-1].replace(":", "-").replace(".", "-")
        if isinstance(image, BuiltImage):
            built = RuntimeImage(f"{self._node}-{slug}", RuntimeImageArgs(image=image, arch=self._arch,
                                                                           provider=node.provider),
                                 opts=pulumi.ResourceOptions(parent=node))
            return built.reference
        pulled = docker.RemoteImage(
            f"{self._node}-{slug}-image",
            name=image.ref,
            platform=f"linux/{self._arch}",
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=node, provider=node.provider),
        )
        return pulled.image_id
