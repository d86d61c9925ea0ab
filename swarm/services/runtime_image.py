"""The runtime package's image (runtime/Dockerfile), built on each node that runs it."""

from __future__ import annotations

from swarm.plan.types import BuiltImage

RUNTIME_IMAGE = BuiltImage(name="ai-swarm/swarm-runtime", context="runtime", dockerfile="runtime/Dockerfile",
                           version="0.1.0")
