"""The ai-swarm CrossGuard policy pack.

``POLICIES`` lists every policy object the pack serves. Importing this package never
starts the pack's gRPC server; ``__main__.py`` does that for ``pulumi preview
--policy-pack policies``, and ``local_runner.run_policies`` runs the same objects offline.
"""

from __future__ import annotations

from pulumi_policy import Policy

from . import containers, gpu, oci, stack, tailscale

PACK_NAME = "ai-swarm"

POLICIES: list[Policy] = [
    *containers.POLICIES,
    *gpu.POLICIES,
    *oci.POLICIES,
    *tailscale.POLICIES,
    *stack.POLICIES,
]

__all__ = ["PACK_NAME", "POLICIES"]
