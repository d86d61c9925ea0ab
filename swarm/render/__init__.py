"""Every generated config file, as text, keyed by its path under the render folder.

Components deploy exactly these strings; `python -m swarm render --out DIR` writes them.
"""

from __future__ import annotations

import json

from swarm.model import SwarmSpec
from swarm.policy_config import policy_config


def rendered_files(spec: SwarmSpec) -> dict[str, str]:
    """Relative path -> file content, for every file the program generates."""
    files = {
        "policy/policy-config.json": json.dumps(policy_config(spec), indent=2, sort_keys=True) + "\n",
    }
    return dict(sorted(files.items()))
