"""ai-swarm's Pulumi program: read config, build the swarm, export outputs. Nothing else."""

import pulumi

from components.config_source import stack_config_from_runtime
from components.outputs import export_outputs
from components.swarm import Swarm, SwarmArgs
from swarm.stack_config import build_spec

spec = build_spec(stack_config_from_runtime())
swarm = Swarm("ai-swarm", SwarmArgs(spec=spec))
export_outputs(spec, swarm)
pulumi.log.info(f"ai-swarm: {len(spec.nodes)} nodes, {len(spec.inference)} vLLM deployments")
