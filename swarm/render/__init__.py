"""Every generated config file, as text, keyed by its path under the render folder.

Components deploy exactly these strings; `python -m swarm render --out DIR` writes them.
"""

from __future__ import annotations

import json

from swarm.model import SwarmSpec
from swarm.policy_config import policy_config
from swarm.render.runtime import render_autotuner_config, render_router_config, router_service


def rendered_files(spec: SwarmSpec) -> dict[str, str]:
    """Relative path -> file content, for every file the program generates."""
    files = {
        "policy/policy-config.json": json.dumps(policy_config(spec), indent=2, sort_keys=True) + "\n",
    }
    router = router_service(spec)
    if router and spec.inference:
        files["swarm-router/router.yaml"] = render_router_config(spec)
        for node in spec.gpu_nodes():
            if any(deployment.node == node for deployment in spec.inference.values()):
                files[f"swarm-autotuner/{node}.yaml"] = render_autotuner_config(spec, node, router)
    return dict(sorted(files.items()))
