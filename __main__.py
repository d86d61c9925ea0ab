"""ai-swarm's Pulumi program: config → validated spec → SwarmPlan → Swarm → outputs. Nothing else."""

import pulumi

from components.config_source import config_secrets, stack_config_from_pulumi
from components.outputs import export_outputs
from components.swarm import CONFIG, Swarm, SwarmArgs
from swarm.plan.builder import build_plan
from swarm.stack_config import build_spec

plan = build_plan(build_spec(stack_config_from_pulumi()))
swarm = Swarm("ai-swarm", SwarmArgs(plan=plan, config_secrets=config_secrets(plan.secret_sources(CONFIG))))
export_outputs(plan)
pulumi.log.info(f"ai-swarm: {len(plan.spec.nodes)} nodes, {len(plan.services)} containers")
