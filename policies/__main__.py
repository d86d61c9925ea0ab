"""Entry point for ``pulumi preview --policy-pack policies``: serve POLICIES, nothing else."""

import sys
from pathlib import Path

# The engine runs this file with the pack directory first on sys.path; import the pack as
# the `policies` package instead, so its module names cannot shadow installed ones.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies import PACK_NAME, POLICIES  # noqa: E402

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
